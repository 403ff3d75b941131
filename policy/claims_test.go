package policy_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// An address the IPAM gave to a new pod while the old pod's object still
// reports it belongs to one pod only: the IR stays valid (a kernel backend
// dispatches on the address), the address is the new pod's as an endpoint
// and as a peer, and the old pod gets it back if the new one goes first.
func TestSharedAddressBelongsToOnePod(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	created := func(p *corev1.Pod, d time.Duration) *corev1.Pod {
		p.CreationTimestamp = metav1.NewTime(epoch.Add(d))
		return p
	}
	old := created(pt.Pod("shop", "db-old", pt.WithLabels(map[string]string{"role": "db"}), pt.WithIPs("10.0.0.5")), 0)
	fresh := created(pt.Pod("shop", "web-new", pt.WithLabels(map[string]string{"role": "web"}), pt.WithIPs("10.0.0.5")), time.Minute)
	client := pt.Pod("shop", "client", pt.WithLabels(map[string]string{"role": "client"}), pt.WithIPs("10.0.0.9"))

	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(pt.Namespace("shop", nil), old, client,
		// The db accepts nothing; the client may only talk to the db.
		pt.NetworkPolicy("shop", "db-deny", pt.WithPodSelector(pt.MatchLabels(map[string]string{"role": "db"})),
			pt.WithPolicyTypes("Ingress")),
		pt.NetworkPolicy("shop", "client-to-db", pt.WithPodSelector(pt.MatchLabels(map[string]string{"role": "client"})),
			pt.WithPolicyTypes("Egress"),
			pt.WithEgress(pt.EgressRule(pt.Peers(pt.PodPeer(pt.MatchLabels(map[string]string{"role": "db"})))))),
	))
	assert.False(t, w.allowed("10.0.0.9", "10.0.0.5", ir.TCP, 80), "db-old isolates 10.0.0.5 for ingress")

	check := func(owner string) {
		t.Helper()
		snap := w.e.Checkpoint() // ends the current delta: the memory backend takes the snapshot
		require.NoError(t, snap.Validate())
		_, err := w.mem.Sync(context.Background(), snap)
		require.NoError(t, err)
		_, err = nftables.Render(snap)
		require.NoError(t, err, "the snapshot must be programmable")
		var holders []string
		for _, ep := range snap.Endpoints {
			for _, ip := range ep.IPs {
				if ip.String() == "10.0.0.5" {
					holders = append(holders, ep.ID)
				}
			}
		}
		if owner == "" {
			assert.Empty(t, holders)
		} else {
			assert.Equal(t, []string{owner}, holders)
		}
	}

	assert.Empty(t, w.e.SharedAddresses())

	// The new pod appears with the same address: it owns it.
	require.NoError(t, w.add(fresh))
	check("shop/web-new")
	assert.Equal(t, []policy.SharedAddress{{Address: netip.MustParseAddr("10.0.0.5"), Owner: "shop/web-new", Others: []string{"shop/db-old"}}},
		w.e.SharedAddresses())
	assert.False(t, w.allowed("10.0.0.9", "10.0.0.5", ir.TCP, 80), "web-new is not a db: the client's egress denies")

	// Being deleted ranks below anything else, even a newer creation.
	deleting := fresh.DeepCopy()
	now := metav1.NewTime(epoch.Add(time.Hour))
	deleting.DeletionTimestamp = &now
	require.NoError(t, w.add(deleting))
	check("shop/db-old")
	assert.Equal(t, "shop/db-old", w.e.SharedAddresses()[0].Owner)
	assert.False(t, w.allowed("10.0.0.9", "10.0.0.5", ir.TCP, 80), "db-old again: isolated for ingress")

	require.NoError(t, w.add(fresh))
	check("shop/web-new")

	// The new pod goes: the old one has the address back.
	w.e.DeletePod("shop", "web-new")
	check("shop/db-old")
	assert.Empty(t, w.e.SharedAddresses())
	w.e.DeletePod("shop", "db-old")
	check("")

	// Incremental and full agree at every step (the ranking does not
	// depend on the order of events).
	w2 := policy.New(policy.Config{})
	for _, o := range []*corev1.Pod{fresh, old} {
		require.NoError(t, w2.UpsertPod(o))
	}
	w3 := policy.New(policy.Config{})
	for _, o := range []*corev1.Pod{old, fresh} {
		require.NoError(t, w3.UpsertPod(o))
	}
	assert.Equal(t, w2.Snapshot().Endpoints, w3.Snapshot().Endpoints)
}
