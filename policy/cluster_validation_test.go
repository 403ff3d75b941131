package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// flow is one expected verdict over tierWorld.
type flow struct {
	src, dst string
	proto    ir.Protocol
	port     uint16
	allowed  bool
}

// Backstops: an Admin-tier policy that allows, or denies, everything to and
// from the pods of namespace x after every other Admin policy. With allowAfter, a
// dropped Deny would show as an allowed flow; with denyAfter, a widened
// Allow would.
var (
	allowAfter = pt.ANP("zz-allow-after", `
		priority: 1000
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress: [{action: Allow, from: [{namespaces: {}}]}]
		egress: [{action: Allow, to: [{networks: [0.0.0.0/0, "::/0"]}]}]`)
	denyAfter = pt.ANP("zz-deny-after", `
		priority: 1000
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress: [{action: Deny, from: [{namespaces: {}}]}]
		egress: [{action: Deny, to: [{networks: [0.0.0.0/0, "::/0"]}]}]`)
)

func TestInvalidClusterPoliciesFailClosed(t *testing.T) {
	tooMany := "tier: Admin\npriority: 1\nsubject: {namespaces: {matchLabels: {ns: x}}}\ningress:\n"
	for range 25 {
		tooMany += "- {action: Accept, from: [{namespaces: {matchLabels: {ns: z}}}]}\n"
	}
	tooMany += "- {action: Deny, from: [{namespaces: {matchLabels: {ns: \"y\"}}}]}\n"
	longName := strings.Repeat("n", 101)

	for _, tc := range []struct {
		name   string
		obj    any
		extra  []any
		fields []string
		flows  []flow
	}{
		{
			name: "Deny rule with a bad selector operator denies everything at its place",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Allow, from: [{namespaces: {matchLabels: {ns: z}}}]}
				- {action: Deny, from: [{namespaces: {matchExpressions: [{key: ns, operator: Near, values: ["y"]}]}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[1].from[0].namespaces.matchExpressions[0].operator"},
			flows: []flow{
				{za, xa, ir.TCP, 80, true}, // the valid rule before it still applies
				{ya, xa, ir.TCP, 80, false},
				{xb, xa, ir.TCP, 80, false},
				{xa, ya, ir.TCP, 80, true}, // egress is not affected
			},
		},
		{
			name: "Allow rule with a bad selector matches nothing",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Allow, from: [{pods: {namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: In}]}}}]}
				- {action: Allow, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra:  []any{denyAfter},
			fields: []string{"spec.ingress[0].from[0].pods.podSelector.matchExpressions[0].values"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}, {za, xa, ir.TCP, 80, true}},
		},
		{
			name: "Pass rule with an unmasked CIDR denies everything",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Pass, to: [{networks: [10.0.2.1/16]}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.egress[0].to[0].networks[0]"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}, {xa, "192.168.1.1", ir.UDP, 53, false}, {ya, xa, ir.TCP, 80, true}},
		},
		{
			name: "Deny rule with a bad CIDR",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Deny, to: [{networks: [10.0.2.0/40]}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.egress[0].to[0].networks[0]"},
			flows:  []flow{{xa, za, ir.TCP, 80, false}},
		},
		{
			name: "port out of range",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portNumber: {protocol: TCP, port: 70000}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].ports[0].portNumber.port"},
			flows:  []flow{{ya, xa, ir.UDP, 5, false}},
		},
		{
			name: "port range not increasing",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portRange: {start: 90, end: 90}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].ports[0].portRange.end"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "unknown protocol",
			obj: pt.BANP("default", `
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {protocol: ICMP, port: 1}}]}`),
			fields: []string{"spec.ingress[0].ports[0].portNumber.protocol"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}, {xa, ya, ir.TCP, 80, true}},
		},
		{
			name: "ports present but empty",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: []}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].ports"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "two kinds of port in one entry",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Pass, from: [{namespaces: {matchLabels: {ns: z}}}], protocols: [{tcp: {destinationPort: {number: 80}}, udp: {destinationPort: {number: 80}}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].protocols[0]"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "tcp without a destination port",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], protocols: [{tcp: {}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].protocols[0].tcp.destinationPort"},
			flows:  []flow{{ya, xa, ir.SCTP, 80, false}},
		},
		{
			name: "port number and range together",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], protocols: [{sctp: {destinationPort: {number: 80, range: {start: 1, end: 2}}}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].protocols[0].sctp.destinationPort"},
			flows:  []flow{{ya, xa, ir.SCTP, 80, false}},
		},
		{
			name: "unknown action",
			obj: pt.CNP("bad", `
				tier: Baseline
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Drop, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
			fields: []string{"spec.ingress[0].action"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "Pass in a BaselineAdminNetworkPolicy",
			obj: pt.BANP("default", `
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Pass, to: [{namespaces: {matchLabels: {ns: z}}}]}`),
			fields: []string{"spec.egress[0].action"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}},
		},
		{
			name: "rule without peers",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Deny, to: []}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.egress[0].to"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}},
		},
		{
			name: "peer with two fields",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Allow, to: [{namespaces: {}, networks: [0.0.0.0/0]}]}`),
			extra:  []any{denyAfter},
			fields: []string{"spec.egress[0].to[0]"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}},
		},
		{
			name: "peer with no field",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].from[0]"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "named port with a networks peer",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Deny, to: [{networks: [10.0.3.0/24]}], ports: [{namedPort: http}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.egress[0]"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}},
		},
		{
			name: "bad named port",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], protocols: [{destinationNamedPort: "Not A Port"}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].protocols[0].destinationNamedPort"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "domainNames in a Deny rule",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				egress:
				- {action: Deny, to: [{domainNames: [example.com]}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.egress[0].to[0].domainNames"},
			flows:  []flow{{xa, ya, ir.TCP, 80, false}},
		},
		{
			name: "rule name too long",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {name: `+longName+`, action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress[0].name"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}},
		},
		{
			name:   "too many rules: those past the limit are invalid",
			obj:    pt.CNP("bad", tooMany),
			extra:  []any{allowAfter},
			fields: []string{"spec.ingress", "spec.ingress[25]"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}, {xb, xa, ir.TCP, 80, false}, {za, xa, ir.TCP, 80, true}},
		},
		{
			name: "priority out of range: first in its tier, denials only",
			obj: pt.ANP("bad", `
				priority: 1001
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}
				- {action: Pass, from: [{pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {}}}]}
				- {action: Allow, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`),
			extra: []any{denyAfter, pt.ANP("allow-z", `
				priority: 0
				subject: {namespaces: {}}
				ingress: [{action: Allow, from: [{namespaces: {matchLabels: {ns: z}}}]}]`)},
			fields: []string{"spec.priority"},
			flows:  []flow{{za, xa, ir.TCP, 80, false}, {xb, xa, ir.TCP, 80, false}, {ya, xa, ir.TCP, 80, false}, {za, ya, ir.TCP, 80, true}},
		},
		{
			name: "subject with both namespaces and pods: every pod, denials only",
			obj: pt.CNP("bad", `
				tier: Admin
				priority: 1
				subject: {namespaces: {matchLabels: {ns: x}}, pods: {namespaceSelector: {}, podSelector: {}}}
				ingress:
				- {action: Accept, from: [{namespaces: {matchLabels: {ns: "y"}}}]}
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra:  []any{denyAfter},
			fields: []string{"spec.subject"},
			flows:  []flow{{za, ya, ir.TCP, 80, false}, {ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "subject with a bad selector",
			obj: pt.ANP("bad", `
				priority: 1
				subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchExpressions: [{key: app, operator: Exists, values: [web]}]}}}
				egress:
				- {action: Deny, to: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.subject.pods.podSelector.matchExpressions[0].values"},
			flows:  []flow{{xb, za, ir.TCP, 80, false}, {ya, za, ir.TCP, 80, true}},
		},
		{
			name: "subject missing",
			obj: pt.ANP("bad", `
				priority: 1
				egress:
				- {action: Pass, to: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra:  []any{allowAfter},
			fields: []string{"spec.subject"},
			flows:  []flow{{ya, za, ir.TCP, 80, false}, {ya, xa, ir.TCP, 80, true}},
		},
		{
			name: "unknown tier: Admin tier, first, denials only",
			obj: pt.CNP("bad", `
				tier: Middle
				priority: 500
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}
				- {action: Accept, from: [{namespaces: {}}]}`),
			extra: []any{pt.NetworkPolicy("x", "deny", pt.WithPodSelector(pt.MatchLabels(nil))), pt.ANP("allow-z", `
				priority: 0
				subject: {namespaces: {}}
				ingress: [{action: Allow, from: [{namespaces: {matchLabels: {ns: z}}}]}]`)},
			fields: []string{"spec.tier"},
			flows:  []flow{{za, xa, ir.TCP, 80, false}, {ya, xa, ir.TCP, 80, false}},
		},
		{
			name: "BaselineAdminNetworkPolicy not named default",
			obj: pt.BANP("other", `
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress:
				- {action: Allow, from: [{namespaces: {matchLabels: {ns: "y"}}}]}
				- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
			extra: []any{pt.BANP("default", `
				subject: {namespaces: {matchLabels: {ns: x}}}
				ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]`)},
			fields: []string{"metadata.name"},
			flows:  []flow{{ya, xa, ir.TCP, 80, false}, {za, xa, ir.TCP, 80, false}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tierWorld(t)
			require.NoError(t, w.add(tc.extra...))
			err := w.add(tc.obj)
			ve, ok := policy.AsValidationError(err)
			require.True(t, ok, "want a *ValidationError, got %v", err)
			assert.NotEmpty(t, ve.Kind)
			assert.Equal(t, tc.obj.(interface{ GetName() string }).GetName(), ve.Name)
			for _, f := range tc.fields {
				assert.Contains(t, err.Error(), f+":", "the error names the field")
			}
			assert.Contains(t, w.e.Problems(), ve)
			assert.False(t, ve.Unsupported(), "invalid, not merely unsupported")
			for _, f := range tc.flows {
				v := w.verdict(f.src, f.dst, f.proto, f.port)
				assert.Equal(t, f.allowed, v.Allowed, "%s -> %s %s/%d: egress %s; ingress %s", f.src, f.dst, f.proto, f.port, v.Egress, v.Ingress)
			}
		})
	}
}

func TestDomainNamesAreReportedAndMatchNothing(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(denyAfter))
	err := w.add(pt.CNP("dns", `
		tier: Admin
		priority: 1
		subject: {namespaces: {matchLabels: {ns: x}}}
		egress:
		- {action: Accept, to: [{domainNames: ["*.example.com"]}, {namespaces: {matchLabels: {ns: z}}}]}`))
	ve, ok := policy.AsValidationError(err)
	require.True(t, ok)
	assert.Contains(t, ve.Error(), "spec.egress[0].to[0].domainNames")
	assert.Len(t, ve.Errs, 1)
	assert.True(t, ve.Unsupported(), "a warning, not an invalid object")
	assert.True(t, w.allowed(xa, za, ir.TCP, 80), "the rule's other peers still match")
	assert.False(t, w.allowed(xa, "93.184.215.14", ir.TCP, 443), "a domain name never allows")
}

func TestClusterValidationErrorNamesTheObject(t *testing.T) {
	w := tierWorld(t)
	err := w.add(pt.ANP("named", `
		priority: -1
		subject: {namespaces: {}}`))
	require.Error(t, err)
	assert.Equal(t, `AdminNetworkPolicy named: spec.priority: Invalid value: -1: must be between 0 and 1000, inclusive`, err.Error())
	w.e.DeleteAdminNetworkPolicy("named")
	assert.Empty(t, w.e.Problems())
	assert.NoError(t, w.add(pt.ANP("ok", fmt.Sprintf("priority: %d\nsubject: {namespaces: {}}", 1000))))
}
