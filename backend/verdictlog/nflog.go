package verdictlog

// The NFLOG decoder: the netfilter log messages (nfnetlink_log) of one
// group, and the IP and L4 headers of the packet each carries. Everything
// that parses bytes from the kernel is in this file, and fuzzed
// (FuzzDecodeMessage, FuzzDecodePacket).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
)

// nfnetlink_log constants (linux/netfilter/nfnetlink_log.h).
const (
	nfnlSubsysULOG  = 4
	nfulnlMsgPacket = 0
	nfulnlMsgConfig = 1

	nfulaPacketHdr  = 1
	nfulaTimestamp  = 3
	nfulaIfIndexIn  = 4
	nfulaIfIndexOut = 5
	nfulaPayload    = 9
	nfulaPrefix     = 10

	nfulaCfgCmd      = 1
	nfulaCfgMode     = 2
	nfulaCfgNLBufSiz = 3
	nfulaCfgTimeout  = 4
	nfulaCfgQThresh  = 5

	nfulnlCfgCmdBind   = 1
	nfulnlCfgCmdUnbind = 2
	nfulnlCopyPacket   = 2

	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// msgTypePacket is the netlink message type of a logged packet.
const msgTypePacket = nfnlSubsysULOG<<8 | nfulnlMsgPacket

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("verdictlog: malformed message")

// Message is one logged packet as NFLOG delivers it.
type Message struct {
	// Family is the address family of the packet (AF_INET, AF_INET6).
	Family uint8
	// Group is the NFLOG group the message came from.
	Group uint16
	// HWProtocol is the packet's link-layer protocol (0x0800, 0x86dd),
	// Hook the netfilter hook that logged it.
	HWProtocol uint16
	Hook       uint8
	// InDev and OutDev are interface indexes, 0 when absent.
	InDev, OutDev uint32
	// Prefix is the rule's prefix, without its NUL.
	Prefix string
	// Payload is the packet from its network header, as much as was copied.
	Payload []byte
}

// DecodeMessage decodes the body of a netlink message of type
// msgTypePacket: the nfgenmsg header and the attributes. Payload aliases
// b. A message too short or with a broken attribute is an error wrapping
// ErrMalformed; unknown attributes are skipped.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if len(b) < 4 {
		return m, fmt.Errorf("%w: %d bytes, no nfgenmsg header", ErrMalformed, len(b))
	}
	m.Family = b[0]
	m.Group = binary.BigEndian.Uint16(b[2:4])
	b = b[4:]
	for len(b) > 0 {
		if len(b) < 4 {
			return m, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
		}
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return m, fmt.Errorf("%w: attribute %d of length %d in %d bytes", ErrMalformed, typ, l, len(b))
		}
		v := b[4:l]
		switch typ {
		case nfulaPacketHdr:
			if len(v) < 3 {
				return m, fmt.Errorf("%w: packet header of %d bytes", ErrMalformed, len(v))
			}
			m.HWProtocol = binary.BigEndian.Uint16(v)
			m.Hook = v[2]
		case nfulaIfIndexIn, nfulaIfIndexOut:
			if len(v) != 4 {
				return m, fmt.Errorf("%w: interface index of %d bytes", ErrMalformed, len(v))
			}
			if typ == nfulaIfIndexIn {
				m.InDev = binary.BigEndian.Uint32(v)
			} else {
				m.OutDev = binary.BigEndian.Uint32(v)
			}
		case nfulaPrefix:
			m.Prefix = strings.TrimRight(string(v), "\x00")
		case nfulaPayload:
			m.Payload = v
		}
		al := (l + 3) &^ 3
		if al >= len(b) {
			break
		}
		b = b[al:]
	}
	return m, nil
}

// Packet is what the headers of a logged packet say.
type Packet struct {
	Src, Dst netip.Addr
	// Proto is the IP protocol number of the transport header.
	Proto uint8
	// SrcPort and DstPort are set for TCP, UDP and SCTP, 0 otherwise (or
	// in a fragment that is not the first).
	SrcPort, DstPort uint16
}

// IP protocol numbers beyond those of the IR.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// ProtocolName is the Record.Protocol of IP protocol p.
func ProtocolName(p uint8) string {
	switch p {
	case protoICMP:
		return "ICMP"
	case protoICMPv6:
		return "ICMPv6"
	}
	return ir.Protocol(p).String()
}

// maxExtHeaders bounds the IPv6 extension headers walked.
const maxExtHeaders = 8

// DecodePacket reads the IP header (v4 or v6, by its version field) and the
// ports of a TCP, UDP or SCTP header that follows. A packet shorter than
// its IP header is an error wrapping ErrMalformed; a transport header cut
// short leaves the ports 0.
func DecodePacket(b []byte) (Packet, error) {
	var p Packet
	if len(b) < 1 {
		return p, fmt.Errorf("%w: empty packet", ErrMalformed)
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, fmt.Errorf("%w: IPv4 header in %d bytes", ErrMalformed, len(b))
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return p, fmt.Errorf("%w: IPv4 header length %d in %d bytes", ErrMalformed, ihl, len(b))
		}
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.Proto = b[9]
		if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 { // the first fragment, or none
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return p, fmt.Errorf("%w: IPv6 header in %d bytes", ErrMalformed, len(b))
		}
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:]
		first := true
	walk:
		for range maxExtHeaders {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					break walk
				}
				n := (int(rest[1]) + 1) * 8
				if n > len(rest) {
					break walk
				}
				next, rest = rest[0], rest[n:]
			case 44: // fragment
				if len(rest) < 8 {
					break walk
				}
				first = binary.BigEndian.Uint16(rest[2:4])&0xfff8 == 0
				next, rest = rest[0], rest[8:]
			default:
				break walk
			}
		}
		p.Proto = next
		if first {
			l4 = rest
		}
	default:
		return p, fmt.Errorf("%w: IP version %d", ErrMalformed, b[0]>>4)
	}
	switch ir.Protocol(p.Proto) {
	case ir.TCP, ir.UDP, ir.SCTP:
		if len(l4) >= 4 {
			p.SrcPort = binary.BigEndian.Uint16(l4)
			p.DstPort = binary.BigEndian.Uint16(l4[2:])
		}
	}
	return p, nil
}

// configMessage is the body of an NFULNL_MSG_CONFIG message for group:
// nfgenmsg (family AF_UNSPEC, version 0, the group) and attrs.
func configMessage(group uint16, attrs ...[]byte) []byte {
	b := []byte{0, 0, byte(group >> 8), byte(group)}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// attr encodes one netlink attribute with a native-endian header, padded.
func attr(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func cfgCmd(cmd uint8) []byte { return attr(nfulaCfgCmd, []byte{cmd}) }

// cfgMode asks for the first copyRange bytes of each packet.
func cfgMode(copyRange uint32) []byte {
	v := binary.BigEndian.AppendUint32(nil, copyRange)
	return attr(nfulaCfgMode, append(v, nfulnlCopyPacket, 0))
}

func cfgU32(typ uint16, v uint32) []byte { return attr(typ, binary.BigEndian.AppendUint32(nil, v)) }
