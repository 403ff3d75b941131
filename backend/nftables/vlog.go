package nftables

import (
	"strconv"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// The verdict log (Config.Log). A rule that decides a new connection and is
// to be logged is preceded by a copy of its matches that logs:
//
//	<ports> <peer set> limit rate 100/second burst 100 packets log prefix "pal:d:i:<list>:<rule>" group 5
//	<ports> <peer set> counter drop
//
// The limit is a match: past the budget the logging rule stops there and
// the verdict rule that follows decides as always, so logging changes no
// verdict and holds no packet (the kernel hands the copy to NFLOG and goes
// on). Only new connections reach these chains: established and related
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

// logLimit matches while the rule's budget of rate packets per second
// (burst as many) lasts.
func logLimit(rate uint32) frag {
	text := "limit rate " + strconv.FormatUint(uint64(rate), 10) + "/second burst " + strconv.FormatUint(uint64(rate), 10) + " packets"
	return memo(text, func() frag {
		return frag{exprs: []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(rate), Unit: expr.LimitTimeSecond, Burst: rate}}, text: text}
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
