package matrix

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/policy/ir"
)

func loadDemo(t *testing.T, paths ...string) *manifest.State {
	t.Helper()
	st, err := manifest.Load(paths...)
	require.NoError(t, err)
	return st
}

func cellOf(t *testing.T, m *Matrix, src, dst string) *Cell {
	t.Helper()
	i, j := -1, -1
	for k, p := range m.Pods {
		if p.String() == src {
			i = k
		}
		if p.String() == dst {
			j = k
		}
	}
	require.True(t, i >= 0 && j >= 0, "%s -> %s not in the matrix", src, dst)
	return m.Cell(i, j)
}

// The demo with each destination's container ports: db-0 (redis 6379,
// metrics 9121) admits 6379 from the frontends only, and its metrics port
// from Prometheus only.
func TestComputeDemoContainerPorts(t *testing.T) {
	var warnings []string
	m, err := Compute(Input{State: loadDemo(t, "../../demo"), Warn: func(s string) { warnings = append(warnings, s) }})
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, "each destination's container ports", m.Ports)
	assert.Len(t, m.Pods, 6)

	c := cellOf(t, m, "shop/web-1", "shop/db-0")
	require.Equal(t, Partial, c.Verdict)
	require.Len(t, c.Flows, 2)
	redis, metrics := c.Flows[0], c.Flows[1]
	assert.Equal(t, Port{Port: 6379, Protocol: "TCP", Name: "redis"}, redis.Port)
	assert.Equal(t, Allow, redis.Verdict)
	assert.Equal(t, End{Allowed: true, Tier: "NetworkPolicy", Kind: "NetworkPolicy", Namespace: "shop", Name: "app-egress", Rule: "0",
		Summary: "allowed by NetworkPolicy/shop/app-egress rule 0"}, redis.Egress)
	assert.Equal(t, End{Allowed: true, Tier: "NetworkPolicy", Kind: "NetworkPolicy", Namespace: "shop", Name: "db-from-frontend", Rule: "0",
		Summary: "allowed by NetworkPolicy/shop/db-from-frontend rule 0"}, redis.Ingress)
	assert.Equal(t, Port{Port: 9121, Protocol: "TCP", Name: "metrics"}, metrics.Port)
	assert.Equal(t, Deny, metrics.Verdict)
	assert.False(t, metrics.Ingress.Allowed)
	assert.Empty(t, metrics.Ingress.Name, "no single policy decided")
	assert.Equal(t, []string{"NetworkPolicy shop/allow-monitoring", "NetworkPolicy shop/db-from-frontend", "NetworkPolicy shop/default-deny"},
		metrics.Ingress.Isolating)

	assert.Equal(t, Deny, cellOf(t, m, "shop/api-1", "shop/db-0").Verdict, "api is not a frontend")
	assert.Equal(t, None, cellOf(t, m, "shop/web-1", "analytics/report-1").Verdict, "report-1 has no container port")
	assert.Equal(t, Self, cellOf(t, m, "shop/db-0", "shop/db-0").Verdict)
	prom := cellOf(t, m, "monitoring/prometheus-0", "shop/db-0")
	require.Equal(t, Partial, prom.Verdict)
	assert.Equal(t, Allow, prom.Flows[1].Verdict, "Prometheus scrapes 9121")
}

// Ports by number and by name: a named port is tried only where a
// container port has that name, and a port given both ways once.
func TestComputePortsByNumberAndName(t *testing.T) {
	st := loadDemo(t, "../../demo")
	var warnings []string
	m, err := Compute(Input{
		State:     st,
		Warn:      func(s string) { warnings = append(warnings, s) },
		Selection: reach.Selection{Namespaces: []string{"shop"}, Ports: []reach.Port{{Port: 6379, Protocol: ir.TCP}}},
		Named:     []NamedPort{{Name: "redis"}, {Name: "http", Protocol: ir.TCP}, {Name: "metrics", Protocol: ir.UDP}},
	})
	require.NoError(t, err)
	assert.Equal(t, "6379/TCP, redis, http/TCP, metrics/UDP", m.Ports)
	assert.Len(t, m.Pods, 4, "shop only")
	var ports []string
	for _, f := range cellOf(t, m, "shop/web-1", "shop/db-0").Flows {
		ports = append(ports, f.Port.String())
	}
	assert.Equal(t, []string{"6379/TCP (redis)"}, ports, "6379 asked twice (number and name), tried once; db-0 has no http, no UDP metrics")
	ports = nil
	for _, f := range cellOf(t, m, "shop/api-1", "shop/web-1").Flows {
		ports = append(ports, f.Port.String())
	}
	assert.Equal(t, []string{"6379/TCP", "8080/TCP (http)"}, ports, "the number at every pod, the name where it exists")
	assert.Equal(t, Partial, cellOf(t, m, "shop/api-1", "shop/web-1").Verdict)
	assert.Equal(t, []string{"warning: port metrics/UDP: no selected pod has a container port of that name"}, warnings)
}

// Cluster-wide tiers: the deciding rule is named with its name.
func TestComputeAdminTiersNameRules(t *testing.T) {
	m, err := Compute(Input{State: loadDemo(t, "../../demo", "../../demo-admin")})
	require.NoError(t, err)
	var found bool
	for _, c := range m.Cells {
		for _, f := range c.Flows {
			for _, e := range []End{f.Egress, f.Ingress} {
				if e.Tier == "Admin" && e.Name != "" {
					found = true
					assert.NotEmpty(t, e.Kind)
					assert.Contains(t, e.Rule, `"`, "the rule's name is given: %+v", e)
				}
			}
		}
	}
	assert.True(t, found, "some flow decided in the Admin tier")

	// reports-to-frontends passes report-1's traffic to the frontends on to
	// the shop's NetworkPolicies.
	c := cellOf(t, m, "analytics/report-1", "shop/web-1")
	require.NotEmpty(t, c.Flows)
	in := c.Flows[0].Ingress
	assert.Equal(t, "frontends-from-reports", in.Name)
	assert.True(t, in.AfterAdmin)
	assert.Contains(t, in.Summary, `after a Pass by AdminNetworkPolicy/reports-to-frontends rule 0 "shop-decides"`)
	plain, err := Compute(Input{State: loadDemo(t, "../../demo")})
	require.NoError(t, err)
	assert.False(t, cellOf(t, plain, "analytics/report-1", "shop/web-1").Flows[0].Ingress.AfterAdmin, "no Admin tier without the cluster-wide policies")
}

func TestComputeSelectsNothing(t *testing.T) {
	m, err := Compute(Input{State: loadDemo(t, "../../demo"), Selection: reach.Selection{Namespaces: []string{"nope"}}})
	require.NoError(t, err)
	assert.Empty(t, m.Pods)
	assert.Empty(t, m.Cells)
}
