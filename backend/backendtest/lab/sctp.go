package lab

import (
	"encoding/binary"
	"hash/crc32"
)

// SCTP without an SCTP stack: the probe sends one INIT chunk through a raw IP
// socket (protocol 132) and the destination watches for it with another raw
// socket. Packet layout (RFC 9260 §3 and §3.3.2):
//
//	0      2      4              8              12
//	| sport | dport | verif. tag=0 |   checksum   |  common header
//	| type=1 | flags | length=20 | initiate tag | a_rwnd |
//	| out streams | in streams | initial TSN |                INIT chunk
const (
	protoSCTP     = 132
	sctpHeaderLen = 12
	sctpInitLen   = 20
	sctpChunkInit = 1
	sctpPacketLen = sctpHeaderLen + sctpInitLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpChecksum is the CRC32c of an SCTP packet whose checksum field is zero.
// The field carries it in little-endian byte order (RFC 9260 appendix A: the
// CRC's bits are transmitted in the reflected order of the algorithm, which
// is what Linux stores with cpu_to_le32).
func sctpChecksum(pkt []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, pkt[:8])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, pkt[12:])
}

// sctpInit returns an SCTP packet holding a single INIT chunk from sport to
// dport, with tag (which must not be 0) as its initiate tag.
func sctpInit(sport, dport uint16, tag uint32) []byte {
	b := make([]byte, sctpPacketLen)
	be := binary.BigEndian
	be.PutUint16(b[0:], sport)
	be.PutUint16(b[2:], dport)
	// b[4:8]: verification tag, 0 in a packet carrying INIT.
	b[12] = sctpChunkInit
	be.PutUint16(b[14:], sctpInitLen)
	be.PutUint32(b[16:], tag)
	be.PutUint32(b[20:], 1<<16) // advertised receiver window
	be.PutUint16(b[24:], 1)     // outbound streams
	be.PutUint16(b[26:], 1)     // inbound streams
	be.PutUint32(b[28:], tag)   // initial TSN
	binary.LittleEndian.PutUint32(b[8:], sctpChecksum(b))
	return b
}

// parseSCTPInit reports the ports and initiate tag of a packet that begins
// with an INIT chunk and whose checksum is right, as a receiving SCTP stack
// would accept it.
func parseSCTPInit(b []byte) (sport, dport uint16, tag uint32, ok bool) {
	if len(b) < sctpPacketLen {
		return 0, 0, 0, false
	}
	be := binary.BigEndian
	if be.Uint32(b[4:]) != 0 || b[12] != sctpChunkInit || int(be.Uint16(b[14:])) < sctpInitLen {
		return 0, 0, 0, false
	}
	if binary.LittleEndian.Uint32(b[8:]) != sctpChecksum(b) {
		return 0, 0, 0, false
	}
	return be.Uint16(b[0:]), be.Uint16(b[2:]), be.Uint32(b[16:]), true
}
