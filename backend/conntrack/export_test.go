package conntrack

import "testing"

// NetlinkTableForTest opens the netlink table of the namespace fd.
func NetlinkTableForTest(tb testing.TB, fd int) Table {
	t, err := openNetlink(fd)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(t.close)
	return t
}
