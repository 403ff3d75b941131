package conntrack

import (
	"os"
	"strings"
	"testing"
)

// NetlinkTableForTest opens the netlink table of the namespace fd.
func NetlinkTableForTest(tb testing.TB, fd int) Table {
	t, err := openNetlink(fd)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(t.close)
	return t
}

// TCPLooseForTest reads nf_conntrack_tcp_loose in the namespace fd.
func TCPLooseForTest(tb testing.TB, fd int) string {
	var v []byte
	err := inNamespace(fd, func() error {
		var err error
		v, err = os.ReadFile(tcpLoose)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}
