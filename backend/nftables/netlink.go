package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file is the transport: a netlink socket of the NETFILTER family, dumps,
// the ruleset generation, and one atomic batch per commit. Messages are built
// by the small encoders below; expressions are marshalled by
// github.com/google/nftables/expr (see exprs.go).

// errGenChanged reports that the ruleset changed between the moment the state
// was read and the commit (the kernel refused the batch with ERESTART).
var errGenChanged = errors.New("nftables ruleset changed concurrently")

// errDumpInterrupted reports a dump the kernel marked inconsistent.
var errDumpInterrupted = errors.New("nftables dump interrupted by a concurrent change")

const ioTimeout = 30 * time.Second

// conn is a netlink socket bound to one network namespace.
type conn struct {
	nl     *netlink.Conn
	sndbuf int
}

func dial(netns int) (*conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink dial: %w", err)
	}
	// Extended acks carry the kernel's reason for a rejected message.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	c := &conn{nl: nl}
	if err := c.setBuf(unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		_ = nl.SetReadBuffer(8 << 20)
	}
	return c, nil
}

func (c *conn) close() error { return c.nl.Close() }

func (c *conn) setBuf(opt, size int) error {
	raw, err := c.nl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
	}); err != nil {
		return err
	}
	return serr
}

// nfgen is the nfgenmsg header that starts every nftables message.
func nfgen(family byte, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

func msgType(t int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | t)
}

// execute sends one request and returns its replies; a dump flag makes it a
// dump. ENOENT is returned as is (callers test with errors.Is).
func (c *conn) execute(typ int, flags netlink.HeaderFlags, family byte, attrs []byte) ([]netlink.Message, error) {
	_ = c.nl.SetDeadline(time.Now().Add(ioTimeout))
	msgs, err := c.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: msgType(typ), Flags: netlink.Request | flags},
		Data:   append(nfgen(family, 0), attrs...),
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Flags&netlink.DumpInterrupted != 0 {
			return nil, errDumpInterrupted
		}
	}
	return msgs, nil
}

// generation returns the ruleset generation of the namespace: it changes with
// every committed batch, whoever sends it.
func (c *conn) generation() (uint32, error) {
	msgs, err := c.execute(unix.NFT_MSG_GETGEN, 0, unix.AF_UNSPEC, nil)
	if err != nil {
		return 0, fmt.Errorf("nftables: get generation: %w", err)
	}
	for _, m := range msgs {
		if g, ok := parseGen(m); ok {
			return g, nil
		}
	}
	return 0, errors.New("nftables: get generation: no reply")
}

func parseGen(m netlink.Message) (uint32, bool) {
	if m.Header.Type != msgType(unix.NFT_MSG_NEWGEN) || len(m.Data) < 4 {
		return 0, false
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return 0, false
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID {
			return ad.Uint32(), true
		}
	}
	return 0, false
}

// commit sends msgs as one batch. When checkGen is set the kernel applies the
// batch only if the ruleset generation is still gen (else errGenChanged).
// It returns the generation read right after the batch.
func (c *conn) commit(msgs []netlink.Message, gen uint32, checkGen bool) (uint32, error) {
	begin := nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	if checkGen {
		var a attrBuf
		a.putU32(unix.NFNL_BATCH_GENID, gen)
		begin = append(begin, a.b...)
	}
	batch := make([]netlink.Message, 0, len(msgs)+2)
	batch = append(batch, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request}, Data: begin})
	size := 64
	for _, m := range msgs {
		size += 16 + len(m.Data)
	}
	batch = append(batch, msgs...)
	batch = append(batch, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request}, Data: nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)})
	if size+4096 > c.sndbuf {
		want := max(size*2, 1<<20)
		if err := c.setBuf(unix.SO_SNDBUFFORCE, want); err != nil {
			return 0, fmt.Errorf("nftables: batch of %d bytes: send buffer: %w", size, err)
		}
		c.sndbuf = want
	}
	_ = c.nl.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.nl.SendMessages(batch); err != nil {
		return 0, fmt.Errorf("nftables: send batch: %w", err)
	}
	// The kernel handles a batch synchronously inside sendmsg and replies
	// only with errors (no message asks for an ack). A generation request
	// sent now is answered after every error of the batch.
	req, err := c.nl.Send(netlink.Message{
		Header: netlink.Header{Type: msgType(unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   nfgen(unix.AF_UNSPEC, 0),
	})
	if err != nil {
		return 0, fmt.Errorf("nftables: get generation: %w", err)
	}
	var batchErr error
	for {
		replies, err := c.nl.Receive()
		if err != nil {
			if batchErr == nil {
				batchErr = err
			}
			if isBatchReply(err) {
				continue
			}
			return 0, classify(batchErr)
		}
		for _, m := range replies {
			if m.Header.Sequence != req.Header.Sequence {
				continue
			}
			if g, ok := parseGen(m); ok {
				if batchErr != nil {
					return g, classify(batchErr)
				}
				return g, nil
			}
		}
	}
}

// isBatchReply tells an error carried by a netlink reply (the batch's), or an
// overrun of the receive queue by such replies, from a failure of the socket.
func isBatchReply(err error) bool {
	var oe *netlink.OpError
	if !errors.As(err, &oe) {
		return false
	}
	if errors.Is(oe.Err, syscall.ENOBUFS) {
		return true
	}
	var se *os.SyscallError
	if errors.As(oe.Err, &se) {
		return false
	}
	var errno syscall.Errno
	return errors.As(oe.Err, &errno)
}

func classify(err error) error {
	if errors.Is(err, syscall.ERESTART) {
		return errGenChanged
	}
	return fmt.Errorf("nftables: batch rejected: %w", err)
}

// attrBuf encodes netlink attributes (big-endian integers, as nftables wants).
type attrBuf struct{ b []byte }

func (a *attrBuf) put(typ uint16, data []byte) {
	l := 4 + len(data)
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(l))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, data...)
	a.pad()
}

func (a *attrBuf) pad() {
	for len(a.b)%4 != 0 {
		a.b = append(a.b, 0)
	}
}

func (a *attrBuf) putU32(typ uint16, v uint32) {
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], v)
	a.put(typ, d[:])
}

func (a *attrBuf) putStr(typ uint16, s string) {
	l := 4 + len(s) + 1
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(l))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, s...)
	a.b = append(a.b, 0)
	a.pad()
}

// begin opens a nested attribute; end closes it.
func (a *attrBuf) begin(typ uint16) int {
	off := len(a.b)
	a.b = append(a.b, 0, 0, 0, 0)
	binary.NativeEndian.PutUint16(a.b[off+2:], typ|unix.NLA_F_NESTED)
	return off
}

func (a *attrBuf) end(off int) {
	binary.NativeEndian.PutUint16(a.b[off:], uint16(len(a.b)-off))
}

// Netlink constants golang.org/x/sys/unix lacks.
const (
	nftaSetElemKeyEnd = 10     // NFTA_SET_ELEM_KEY_END
	nftaChainUserdata = 12     // NFTA_CHAIN_USERDATA
	nfAccept          = 1      // NF_ACCEPT
	nlaTypeMask       = 0x3fff // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
	nftJump           = 0xfffffffd
)
