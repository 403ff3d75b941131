package nftables

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// The verdict log (Config.Log). A rule that decides a new connection and is
// to be logged is preceded by a copy of its matches that logs:
//
//	limit log-budget-100 { rate 100/second burst 100 packets }
//	<ports> <peer set> limit name "log-budget-100" log prefix "pal:d:i:<list>:<rule>" group 5
//	<ports> <peer set> counter drop
//
// The limit is a match: past the budget the logging rule stops there and
// the verdict rule that follows decides as always, so logging changes no
// verdict and holds no packet (the kernel hands the copy to NFLOG and goes
// on). Every logging rule refers to the one named limit object of the
// table, so the budget is the node's, whatever the number of rules. Only new connections reach these chains: established and related
// packets are accepted by the base chains and invalid ones dropped by the
// profile chain before any rule list.

// logRule returns the logging copy of a rule of matches m, or nil when
// the action is not logged.
func (s *state) logRule(m frag, rl *ir.RuleList, r *ir.Rule, comment string) (*ruleModel, error) {
	lg := s.log
	switch {
	case !lg.Enabled, r.Action == ir.Pass, r.Action == ir.Allow && !lg.LogsAllow(rl):
		return nil, nil
	}
	prefix := verdictlog.RulePrefix(r.Action == ir.Allow, rl.Direction, rl.ID, r.Index)
	return newRule(join(m, logLimit(lg.RateOrDefault()), logGroup(lg.Group, prefix)), comment+", log")
}

// isolatedLogRule is the logging rule before the drop that ends an
// isolated NetworkPolicy tier, nil when denials are not logged.
func (s *state) isolatedLogRule(dir ir.Direction) *ruleModel {
	if !s.log.Enabled {
		return nil
	}
	return mustRule(join(logLimit(s.log.RateOrDefault()), logGroup(s.log.Group, verdictlog.IsolatedPrefix(dir))),
		"NetworkPolicy tier: no rule matched, log")
}

// logLimit matches while the node's budget of rate packets per second
// (burst as many) lasts: a reference to the named limit object every
// logging rule shares, so the budget is the node's, not each rule's.
func logLimit(rate uint32) frag {
	name := logLimitName(rate)
	return memo("limit name "+name, func() frag {
		return frag{exprs: []expr.Any{&expr.Objref{Type: nftObjectLimit, Name: name}}, text: "limit name " + strconv.Quote(name)}
	})
}

// logGroup sends the packet to NFLOG group g with prefix p (at most
// verdictlog.MaxPrefix bytes: ours are).
func logGroup(g uint16, p string) frag {
	text := "log prefix " + strconv.Quote(p) + " group " + strconv.Itoa(int(g))
	return memo(text, func() frag {
		return frag{exprs: []expr.Any{&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: g, Data: []byte(p)}}, text: text}
	})
}

// nftObjectLimit is NFT_OBJECT_LIMIT, the type of a named limit object.
const nftObjectLimit = 4

// logLimitName is the named limit object of a budget of rate records per
// second. Its name carries the rate: a new budget is a new object, and the
// old one goes once no rule uses it (a limit object cannot be changed).
func logLimitName(rate uint32) string { return "log-budget-" + strconv.FormatUint(uint64(rate), 10) }

// objRef names one of our limit objects.
func (t *tx) objRef(name string) []byte {
	var a attrBuf
	a.putStr(unix.NFTA_OBJ_TABLE, t.table)
	a.putStr(unix.NFTA_OBJ_NAME, name)
	a.putU32(unix.NFTA_OBJ_TYPE, nftObjectLimit)
	return a.b
}

// limitMsg creates the limit object name: rate packets per second, burst
// as many.
func (t *tx) limitMsg(name string, rate uint32) netlink.Message {
	a := attrBuf{b: t.objRef(name)}
	off := a.begin(unix.NFTA_OBJ_DATA)
	a.put(unix.NFTA_LIMIT_RATE, binary.BigEndian.AppendUint64(nil, uint64(rate)))
	a.put(unix.NFTA_LIMIT_UNIT, binary.BigEndian.AppendUint64(nil, 1))
	a.putU32(unix.NFTA_LIMIT_BURST, rate)
	a.putU32(unix.NFTA_LIMIT_TYPE, unix.NFT_LIMIT_PKTS)
	a.putU32(unix.NFTA_LIMIT_FLAGS, 0)
	a.end(off)
	return t.msg(unix.NFT_MSG_NEWOBJ, netlink.Create, a.b)
}

// readLimits reads the limit objects of table into m.limits (rate 0 for
// one that is not packets per second with a burst of as many).
func (c *conn) readLimits(table string, m *model) error {
	var a attrBuf
	a.putStr(unix.NFTA_OBJ_TABLE, table)
	a.putU32(unix.NFTA_OBJ_TYPE, nftObjectLimit)
	msgs, err := c.execute(unix.NFT_MSG_GETOBJ, netlink.Dump, unix.NFPROTO_INET, a.b)
	if err != nil {
		return fmt.Errorf("nftables: read limits: %w", err)
	}
	for _, msg := range msgs {
		var tbl, name string
		var typ uint32
		var rate, unit uint64
		var burst, ltyp uint32
		forAttrs(msg.Data[4:], func(at uint16, b []byte) {
			switch at {
			case unix.NFTA_OBJ_TABLE:
				tbl = cstring(b)
			case unix.NFTA_OBJ_NAME:
				name = cstring(b)
			case unix.NFTA_OBJ_TYPE:
				if len(b) == 4 {
					typ = binary.BigEndian.Uint32(b)
				}
			case unix.NFTA_OBJ_DATA:
				forAttrs(b, func(at uint16, b []byte) {
					switch {
					case at == unix.NFTA_LIMIT_RATE && len(b) == 8:
						rate = binary.BigEndian.Uint64(b)
					case at == unix.NFTA_LIMIT_UNIT && len(b) == 8:
						unit = binary.BigEndian.Uint64(b)
					case at == unix.NFTA_LIMIT_BURST && len(b) == 4:
						burst = binary.BigEndian.Uint32(b)
					case at == unix.NFTA_LIMIT_TYPE && len(b) == 4:
						ltyp = binary.BigEndian.Uint32(b)
					}
				})
			}
		})
		if tbl != table || typ != nftObjectLimit {
			continue
		}
		if unit != 1 || ltyp != unix.NFT_LIMIT_PKTS || rate > 1<<32-1 || uint64(burst) != rate {
			rate = 0
		}
		m.limits[name] = uint32(rate)
	}
	return nil
}

// diffLimits records in t what turns have's limit objects into want's:
// new ones are created before the rules, unused ones deleted after them.
func diffLimits(have, want *model, t *tx, note func(string, ...any)) {
	for _, name := range sortedKeys(want.limits) {
		rate, ok := have.limits[name]
		switch {
		case !ok:
			note("limit %s missing", name)
			t.createLimit(name, want.limits[name])
		case rate != want.limits[name]:
			note("limit %s: rate or burst differ", name) // cannot be changed while rules use it
		}
	}
	for _, name := range sortedKeys(have.limits) {
		if _, ok := want.limits[name]; !ok {
			note("limit %s unexpected", name)
			t.deleteLimit(name)
		}
	}
}
