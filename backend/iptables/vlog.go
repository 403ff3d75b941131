package iptables

import (
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// The verdict log (Config.Log). A rule that decides a new connection and is
// to be logged is preceded by a copy of its matches that logs:
//
//	-p tcp -m set --match-set pal-a4-x src -m tcp --dport 80 -m comment --comment "... log"
//	    -m hashlimit --hashlimit-upto 100/sec --hashlimit-burst 100 --hashlimit-name PALISADE-log
//	    -j NFLOG --nflog-prefix "pal:d:i:<list>:<rule>" --nflog-group 5
//	-p tcp -m set --match-set pal-a4-x src -m tcp --dport 80 -m comment --comment "..." -j DROP
//
// NFLOG does not end the chain: the verdict rule that follows decides as
// always. The hashlimit match has no mode, so every logging rule with the
// same --hashlimit-name shares one bucket: the budget is per node (and
// family, as the kernel keeps IPv4 and IPv6 tables apart), whatever the
// number of rules. Only new connections reach these chains (established
// and related packets are accepted first, invalid ones dropped).

// logTarget is the hashlimit match and the NFLOG target of a logging rule
// with prefix p.
func (s *state) logTarget(p string) string {
	rate := strconv.FormatUint(uint64(s.log.RateOrDefault()), 10)
	return "-m hashlimit --hashlimit-upto " + rate + "/sec --hashlimit-burst " + rate +
		" --hashlimit-name " + s.n.logLimitName() + ` -j NFLOG --nflog-prefix "` + p + `" --nflog-group ` + strconv.Itoa(int(s.log.Group))
}

// logRule is the logging copy of a list rule (matches m, comment c), or ""
// when its action is not logged.
func (s *state) logRule(m string, rl *ir.RuleList, r *ir.Rule, c string) string {
	lg := s.log
	switch {
	case !lg.Enabled, r.Action == ir.Pass, r.Action == ir.Allow && !lg.LogsAllow(rl):
		return ""
	}
	return m + comment(c+", log") + " " + s.logTarget(verdictlog.RulePrefix(r.Action == ir.Allow, rl.Direction, rl.ID, r.Index))
}

// isolatedLogRule is the logging rule before the drop that ends an
// isolated NetworkPolicy tier, "" when denials are not logged.
func (s *state) isolatedLogRule(dir ir.Direction) string {
	if !s.log.Enabled {
		return ""
	}
	return comment("NetworkPolicy tier: no rule matched, log") + " " + s.logTarget(verdictlog.IsolatedPrefix(dir))
}

// logLimitName names the hashlimit bucket of the verdict log (at most 31
// bytes: chain prefixes are shorter).
func (n *names) logLimitName() string { return strings.ToLower(n.chain) + "-log" }
