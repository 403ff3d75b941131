package matrix

import "strings"

// pod builds a Pod from "namespace/name".
func pod(s string) Pod {
	ns, name, _ := strings.Cut(s, "/")
	return Pod{Namespace: ns, Name: name}
}

func pods(names ...string) []Pod {
	out := make([]Pod, len(names))
	for i, n := range names {
		out[i] = pod(n)
	}
	return out
}

// by names the policy that decided an end.
func by(kind, ns, name, rule string) End {
	return End{Allowed: true, Tier: "NetworkPolicy", Kind: kind, Namespace: ns, Name: name, Rule: rule,
		Summary: "allowed by " + kind + "/" + ns + "/" + name + " rule " + rule}
}

var (
	open     = End{Allowed: true, Summary: "allowed (no policy decides)"}
	isolated = End{Allowed: false, Tier: "NetworkPolicy", Summary: "denied (isolated by NetworkPolicy, no rule matched)"}
)

// flow builds an evaluated flow; its verdict is that of its two ends.
func flow(src, dst string, port uint16, proto, name string, egress, ingress End) Result {
	return Result{Src: pod(src), Dst: pod(dst), Port: Port{Port: port, Protocol: proto, Name: name},
		Allowed: egress.Allowed && ingress.Allowed, Egress: egress, Ingress: ingress}
}
