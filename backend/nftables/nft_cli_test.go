package nftables

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// These tests list what the backend programs with the nft binary installed
// on the node: operators read our table with it, and a rule nft cannot
// decode makes it abort on `nft list ruleset` (nft 1.0.6 did, on a lookup
// keyed by another map's result). They need root and nft.

// nftCmd runs the installed nft inside ns with stdin and returns its
// output. It skips the test when nft is not installed.
func nftCmd(t *testing.T, ns netns.NsHandle, stdin string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("the nft binary is not installed (Debian: apt-get install nftables); CI installs it")
	}
	var out bytes.Buffer
	var runErr error
	// A child forked by a thread inside ns starts in ns.
	inNS(t, ns, func() {
		cmd := exec.Command(path, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &out, &out
		runErr = cmd.Run()
	})
	return out.String(), runErr
}

// requireNftReads lists the ruleset the ways an operator does and checks
// that nft neither crashes nor fails, that it decodes every expression
// (no raw payload), that its JSON parses and that its text loads back.
func requireNftReads(t *testing.T, ns netns.NsHandle, table string, chains []string) {
	t.Helper()
	list := func(args ...string) string {
		t.Helper()
		out, err := nftCmd(t, ns, "", args...)
		require.NoError(t, err, "nft %s:\n%s", strings.Join(args, " "), out)
		return out
	}
	ruleset := list("list", "ruleset")
	assert.Contains(t, list("list", "tables"), "table inet "+table)
	tableText := list("list", "table", "inet", table)
	for _, c := range chains {
		assert.Contains(t, tableText, "chain "+c+" {")
	}
	for _, raw := range []string{"@nh,", "@th,", "@ll,"} {
		assert.NotContains(t, tableText, raw, "nft could not name a header field we load")
	}

	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	js := list("-j", "list", "ruleset")
	require.NoError(t, json.Unmarshal([]byte(js), &doc), "nft -j output:\n%s", js)
	rules := 0
	for _, o := range doc.Nftables {
		if _, ok := o["rule"]; ok {
			rules++
		}
	}
	assert.Positive(t, rules)

	// The listing loads back (nft -c checks it against the kernel without
	// committing).
	out, err := nftCmd(t, ns, ruleset, "-c", "-f", "-")
	require.NoError(t, err, "nft cannot load its own listing of our table:\n%s", out)
}

func TestNftListsOurTable(t *testing.T) {
	small := synth{pods: 300, policies: 30, remote: 20}
	for _, tc := range []struct {
		name string
		snap *ir.Snapshot
	}{
		// Every match kind: named ports, single ports and ranges, all
		// ports of a protocol, pod sets as hash and as interval sets,
		// ipBlocks with excepts, v4 and v6, Admin (with Pass), NetworkPolicy
		// and Baseline tiers.
		{"exercise, pod sets as hosts", testSnapshot()},
		{"exercise, pod sets as prefixes", irtest.Exercise(false)},
		{"synthetic cluster", small.snapshot()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ns := newTestBackend(t)
			mustSync(t, b, tc.snap)
			var chains []string
			for name := range b.st.m.chains {
				chains = append(chains, name)
			}
			requireNftReads(t, ns, b.cfg.TableName, chains)
		})
	}
}

// TestNftListsDispatch is the case that crashed nft 1.0.6
// (netlink_parse_concat_expr: consumed > 0): the base chains' endpoint
// dispatch. It must be one verdict-map lookup nft prints as
// `ip saddr vmap @egress-v4`, and no lookup of ours may be keyed by the
// result of another lookup.
func TestNftListsDispatch(t *testing.T) {
	b, ns := newTestBackend(t)
	mustSync(t, b, testSnapshot())

	out, err := nftCmd(t, ns, "", "list", "chain", "inet", b.cfg.TableName, chainIngressForward)
	require.NoError(t, err, out)
	assert.Contains(t, out, "ip daddr vmap @ingress-v4")
	assert.Contains(t, out, "ip6 daddr vmap @ingress-v6")
	out, err = nftCmd(t, ns, "", "list", "map", "inet", b.cfg.TableName, "ingress-v4")
	require.NoError(t, err, out)
	assert.Contains(t, out, "type ipv4_addr : verdict")
	assert.Contains(t, out, ": jump p4-")

	c, err := gnft.New(gnft.WithNetNSFd(int(ns)))
	require.NoError(t, err)
	tbl := &gnft.Table{Family: gnft.TableFamilyINet, Name: b.cfg.TableName}
	chains, err := c.ListChainsOfTableFamily(gnft.TableFamilyINet)
	require.NoError(t, err)
	n := 0
	for _, ch := range chains {
		if ch.Table.Name != tbl.Name {
			continue
		}
		rules, err := c.GetRules(tbl, ch)
		require.NoError(t, err)
		for i, r := range rules {
			n++
			fromLookup := map[uint32]bool{}
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Lookup:
					assert.False(t, fromLookup[e.SourceRegister], "chain %s rule %d: a lookup keyed by another lookup's result", ch.Name, i)
					if e.IsDestRegSet {
						fromLookup[e.DestRegister] = true
					}
				case *expr.Payload:
					fromLookup[e.DestRegister] = false
				case *expr.Meta:
					fromLookup[e.Register] = false
				}
			}
		}
	}
	assert.Positive(t, n)
}
