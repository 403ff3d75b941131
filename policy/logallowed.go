package policy

// LogAllowedAnnotation, set to "true" on a policy object (NetworkPolicy,
// AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy),
// asks the node's verdict log to record the connections the object's rules
// allow, not only denied ones; on a Namespace, the same for every
// NetworkPolicy of that namespace. The engine carries it into
// ir.RuleList.LogAllowed; it changes no verdict. Any other value, or no
// annotation, is false.
const LogAllowedAnnotation = "palisade.dev/log-allowed"

func logAllowed(annotations map[string]string) bool {
	return annotations[LogAllowedAnnotation] == "true"
}

// listLogsAllowed is the LogAllowed of a rule list of the plan with key k:
// the object's annotation, or its namespace's.
func (e *engine) listLogsAllowed(k policyKey, own bool) bool {
	if own || k.namespace == "" {
		return own
	}
	ns := e.namespaces[k.namespace]
	return ns != nil && ns.logAllowed
}

// setNamespaceLogAllowed records the namespace's annotation and, when it
// changed, replaces the rule lists of the namespace's NetworkPolicies
// (cost: one pass over the registered policies, on this rare change).
func (e *engine) setNamespaceLogAllowed(ns *namespaceState, on bool) {
	if ns.logAllowed == on {
		return
	}
	ns.logAllowed = on
	for k, st := range e.policies {
		if k.namespace != ns.name {
			continue
		}
		for _, id := range st.lists {
			rl := e.lists[id]
			if rl == nil {
				continue
			}
			want := e.listLogsAllowed(k, st.logAllowed)
			if rl.LogAllowed == want {
				continue
			}
			nl := *rl // the emitted list is kept for comparison: replace, never mutate
			nl.LogAllowed = want
			e.setList(&nl)
		}
	}
}
