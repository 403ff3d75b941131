package policytest

import (
	"fmt"
)

// AddSyntheticClusterPolicies adds n cluster-wide policies to a synthetic
// cluster of the given config, the kind a platform team writes: Admin-tier
// AdminNetworkPolicies and ClusterNetworkPolicies mixed (guardrails per team:
// deny from staging, pass the team's own frontends to the NetworkPolicies,
// allow DNS to the cache pods, deny the control-plane nodes), Baseline-tier
// ClusterNetworkPolicies (default deny across environments), and the
// BaselineAdminNetworkPolicy. Priorities repeat, so that equal priorities
// occur. It also adds the cluster's nodes (node-<i>, labelled with a role,
// one InternalIP each in 192.168.0.0/16).
func AddSyntheticClusterPolicies(c *Cluster, cfg SyntheticConfig, n int) {
	nodes := max(cfg.Nodes, 1)
	for i := range nodes {
		role := "worker"
		if i%10 == 0 {
			role = "control-plane"
		}
		c.SetNode(Node(fmt.Sprintf("node-%d", i), map[string]string{"node-role": role},
			fmt.Sprintf("192.168.%d.%d", i/250, 1+i%250)))
	}
	teams := max(cfg.Namespaces/10, 1)
	for i := range n {
		team := fmt.Sprintf("team-%d", i%teams)
		priority := 10 * (i % 50)
		switch i % 4 {
		case 0:
			c.SetAdminNetworkPolicy(ANP(fmt.Sprintf("anp-%d", i), fmt.Sprintf(`
				priority: %d
				subject: {namespaces: {matchLabels: {team: %s}}}
				ingress:
				- {name: no-staging, action: Deny, from: [{namespaces: {matchLabels: {env: staging}}}], ports: [{portNumber: {protocol: TCP, port: 5432}}]}
				- {name: own-frontends, action: Pass, from: [{pods: {namespaceSelector: {matchLabels: {team: %s}}, podSelector: {matchLabels: {role: frontend}}}}]}
				egress:
				- {name: dns, action: Allow, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {role: cache}}}}], ports: [{namedPort: dns}]}
				- {name: no-control-plane, action: Deny, to: [{nodes: {matchLabels: {node-role: control-plane}}}]}`, priority, team, team)))
		case 1:
			c.SetClusterNetworkPolicy(CNP(fmt.Sprintf("cnp-admin-%d", i), fmt.Sprintf(`
				tier: Admin
				priority: %d
				subject: {pods: {namespaceSelector: {matchLabels: {team: %s}}, podSelector: {matchExpressions: [{key: role, operator: In, values: [db, backend]}]}}}
				ingress:
				- {name: backends, action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {team: %s}}, podSelector: {matchExpressions: [{key: role, operator: In, values: [backend, worker]}]}}}], protocols: [{tcp: {destinationPort: {number: 5432}}}]}
				- {name: rest, action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 5000, end: 6000}}}}]}
				egress:
				- {name: internet, action: Deny, to: [{networks: [0.0.0.0/0]}], protocols: [{tcp: {destinationPort: {number: 443}}}]}`, priority, team, team)))
		case 2:
			c.SetClusterNetworkPolicy(CNP(fmt.Sprintf("cnp-baseline-%d", i), fmt.Sprintf(`
				tier: Baseline
				priority: %d
				subject: {namespaces: {matchLabels: {team: %s, env: prod}}}
				ingress:
				- {name: from-staging, action: Deny, from: [{namespaces: {matchLabels: {env: staging}}}]}`, priority, team)))
		default:
			c.SetAdminNetworkPolicy(ANP(fmt.Sprintf("anp-%d", i), fmt.Sprintf(`
				priority: %d
				subject: {namespaces: {matchLabels: {team: %s}}}
				ingress:
				- {name: monitoring, action: Allow, from: [{namespaces: {matchLabels: {team: team-0}}}], ports: [{namedPort: metrics}]}`, priority, team)))
		}
	}
	c.SetBaselineAdminNetworkPolicy(BANP("default", `
		subject: {namespaces: {}}
		ingress:
		- {name: frontends-only, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {role: frontend}}}}], ports: [{portRange: {start: 9000, end: 9004}}]}`))
}
