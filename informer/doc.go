// Package informer keeps a Backend programmed from the cluster: client-go
// shared informers for Namespaces, Pods and NetworkPolicies feed a
// policy.Engine, and a bounded-frequency runner turns the Engine's output
// into Backend calls.
//
// What it guarantees:
//   - Nothing is programmed from a partial view: the first Backend call is a
//     full Sync, made once every informer cache has synced. Until then the
//     packet filter keeps whatever it held (rules of a previous run stay).
//   - Bursts coalesce: every event marks work, and at most one run (one
//     Apply of the Engine's delta) happens per Config.MinSyncInterval.
//   - A failed Apply is followed by a full Sync in the same run; a failed
//     Sync is retried with exponential backoff. A full Sync runs every
//     Config.ResyncPeriod and repairs drift.
//   - When the Backend (or one it wraps) implements backend.DriftWatcher, it
//     is asked every Config.DriftCheckInterval (500 ms by default; a slow
//     check is spaced out to 20 times its duration) whether
//     someone else changed the packet filter; when so, the next run is a
//     full Sync at once, so a flushed table stays open for about that
//     interval, not until the periodic resync. A Sync that repaired drift
//     is logged, counted (Metrics.AddRepairs) and, with Config.NodeName,
//     raised as a Warning Event (EventReasonDriftRepaired) on the Node,
//     naming what was repaired.
//   - Invalid NetworkPolicies never stop the controller and never open
//     traffic: the Engine enforces them in their safe form, and the
//     controller logs them and records a Warning Event
//     (EventReasonInvalidNetworkPolicy) on the policy.
//   - With Config.Dynamic set, the cluster-wide policies of
//     policy.networking.k8s.io (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
//     ClusterNetworkPolicy) and Nodes feed the Engine too. Each kind is
//     watched while discovery says the API server serves it (checked at
//     startup, before the first Sync, then every Config.ClusterPolicyPoll):
//     the controller starts and stays ready without the CRDs and picks them
//     up when installed, without a restart. Invalid ones get a Warning Event.
//   - Objects from the informer caches are read, never modified.
//   - Run never removes the rules: on exit they stay as programmed, so a
//     restart opens nothing. Call Backend.Cleanup to remove them.
//   - Run returns once ctx is done, whatever the API server does (refusing
//     connections, or accepting them and never answering): no wait of the
//     controller outlives ctx.
//   - The controller ends the Engine's deltas (Delta, Checkpoint); anyone
//     else may read the Engine (Snapshot, Problems) at any time.
//
// Informer caches: given Config.Factory, the controller registers on the
// caller's SharedInformerFactory (one cluster-wide pod cache, not two),
// sets no transform on it (its other users may read what a transform
// drops) and never shuts it down. Without one it builds its own, whose pod
// cache keeps only what the engine reads (TrimPod); a caller may install
// TrimPod on its own factory's pod informer when no other user needs more.
// Heap held once the first Sync is done (informer caches + engine + a
// memory backend; realistic Deployment pods with two containers, managed
// fields and statuses; every pod local; BenchmarkInformerMemory, one run,
// 2-core machine):
//
//	                                       10k pods               100k pods
//	caller's factory, no transform         110 MiB, 11.6 KB/pod   1091 MiB, 11.4 KB/pod
//	managed fields dropped (old default)   102 MiB, 10.7 KB/pod   1005 MiB, 10.5 KB/pod
//	own factory, TrimPod                   48 MiB,  5.0 KB/pod    470 MiB,  4.9 KB/pod
//	engine + backend alone, no informer    17 MiB,  1.7 KB/pod    160 MiB,  1.7 KB/pod
//
// Agent pieces: FailClosed isolates a node's pods before the first Sync
// when the backend reports no rules of its own (backend.Verifier);
// Instruments implements Metrics over any counters, gauges and histograms,
// and the module github.com/palisade-net/palisade/informer/prommetrics
// fills it with Prometheus ones.
//
// Embedding it in a CNI daemon takes a few lines:
//
//	nft, err := nftables.New(nftables.Config{TableName: "mycni-policy"})
//	if err != nil {
//		return err
//	}
//	defer nft.Close()
//	ctrl, err := informer.New(informer.Config{
//		Client:  clientset, // a kubernetes.Interface
//		Engine:  policy.New(policy.Config{NodeName: nodeName}),
//		Backend: nft,
//	})
//	if err != nil {
//		return err
//	}
//	go ctrl.Run(ctx) // returns when ctx is done
//	// ctrl.Ready() reports when the first full Sync has succeeded.
//
// examples/node-agent wires the same with metrics, Events and health
// endpoints.
package informer
