// Package cni runs the real CNI plugins for the end-to-end suite, the way a
// container runtime runs them: a network configuration list read from a
// file, github.com/containernetworking/cni's libcni for ADD and DEL, a
// CNI cache directory per node, CNI_ARGS carrying the pod's namespace and
// name. A Runtime is one node's runtime; it implements lab.Wiring, so a
// lab pod added with it is wired by the plugins (lab.PodSpec.Wiring) and
// unwired by them when removed.
//
// # Plugins
//
//   - bridge and host-local: Debian's containernetworking-plugins package
//     (/usr/lib/cni; .ci/run installs it).
//   - flannel: Debian does not ship it, and the module proxy does not
//     serve its current home (github.com/flannel-io/cni-plugin). The same
//     plugin, before it moved, is github.com/containernetworking/plugins
//     v0.9.1 plugins/meta/flannel: FlannelPath builds it once per machine
//     with `go install` into the suite's cache directory (cluster.CacheDir,
//     where kube-apiserver is cached too), ~2 s. It speaks CNI up to 0.4.0
//     and delegates to bridge with host-local, from the subnet.env flanneld
//     would write.
//
// # Where the plugins run
//
// A plugin configures the network namespace it runs in as the "host": the
// Runtime starts each plugin process from an OS thread locked into its
// node's namespace (lab.InNamespace; a child inherits its thread's
// namespaces), through a libcni invoke.Exec of its own, so every plugin,
// and flannel's delegate, runs in the node's namespace while the test
// process stays in its own. CNI_NETNS is /proc/<test pid>/fd/<fd> of the
// pod's namespace handle the lab holds: nothing is mounted, nothing
// outlives the process.
//
// # Files (all under Config.Dir, never /var/lib/cni, /etc/cni or /run/flannel)
//
//	net.d/10-<network>.conflist    the network configuration list
//	cache/results/<network>-<container ID>-eth0
//	                               libcni's cache: the ADD result (interfaces:
//	                               the bridge, the host-side veth, the pod's
//	                               eth0 with its sandbox path; IPs; routes),
//	                               the config, CNI_ARGS, the netns path
//	host-local/<network>/<IP>      host-local's leases (content: container ID
//	                               and interface), last_reserved_ip.0, lock
//	flannel/<container ID>         flannel's delegate config, kept for DEL
//	subnet.env                     what flanneld writes (flannel only)
//	plugins.log                    the plugins' stderr
//
// Routes between the nodes' pod subnets are not the plugins' job (flanneld
// installs them); HostGW adds them as flannel's host-gw backend does.
package cni
