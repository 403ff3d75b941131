package lab

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCRC32cVector(t *testing.T) {
	// RFC 3720 appendix B.4: 32 bytes of zeros.
	assert.Equal(t, uint32(0x8a9136aa), crc32.Checksum(make([]byte, 32), castagnoli))
}

func TestSCTPInitRoundTrip(t *testing.T) {
	pkt := sctpInit(40000, 80, 0xdeadbeef)
	assert.Len(t, pkt, sctpPacketLen)
	assert.Equal(t, []byte{0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0}, pkt[:8], "ports and a zero verification tag")
	assert.Equal(t, []byte{1, 0, 0, 20}, pkt[12:16], "INIT chunk of 20 bytes")

	// The checksum is the CRC32c of the packet with the field zeroed.
	zeroed := append([]byte(nil), pkt...)
	copy(zeroed[8:12], make([]byte, 4))
	assert.Equal(t, crc32.Checksum(zeroed, castagnoli), binary.LittleEndian.Uint32(pkt[8:]))

	sport, dport, tag, ok := parseSCTPInit(pkt)
	assert.True(t, ok)
	assert.Equal(t, uint16(40000), sport)
	assert.Equal(t, uint16(80), dport)
	assert.Equal(t, uint32(0xdeadbeef), tag)
}

func TestParseSCTPInitRejects(t *testing.T) {
	for name, mutate := range map[string]func([]byte) []byte{
		"short":            func(b []byte) []byte { return b[:20] },
		"bad checksum":     func(b []byte) []byte { b[8] ^= 1; return b },
		"payload changed":  func(b []byte) []byte { b[3] ^= 1; return b },
		"not INIT":         func(b []byte) []byte { b[12] = 2; return resum(b) },
		"nonzero vtag":     func(b []byte) []byte { b[7] = 1; return resum(b) },
		"short INIT chunk": func(b []byte) []byte { b[15] = 4; return resum(b) },
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, ok := parseSCTPInit(mutate(sctpInit(1234, 80, 7)))
			assert.False(t, ok)
		})
	}
}

func resum(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[8:], sctpChecksum(b))
	return b
}
