package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadKnownValuesDecodesEachLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "values")
	require.NoError(t, os.WriteFile(p, []byte("plain value\n\nhex:00ff10\nb64:aGVsbG8=\n"), 0o644))
	v, err := readKnownValues(p)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("plain value"), {0, 0xff, 0x10}, []byte("hello")}, v)
	require.NoError(t, os.WriteFile(p, []byte("hex:zz\n"), 0o644))
	_, err = readKnownValues(p)
	assert.ErrorContains(t, err, ":1:")
}

// udpCapture writes a pcap with the same UDP payload sent count times.
func udpCapture(t *testing.T, payload []byte, count int) string {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	require.NoError(t, w.WriteFileHeader(65536, layers.LinkTypeEthernet))
	for i := range count {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(127, 0, 0, 1), DstIP: net.IPv4(127, 0, 0, 2)}
		u := &layers.UDP{SrcPort: 5000, DstPort: layers.UDPPort(6000 + i%2)}
		require.NoError(t, u.SetNetworkLayerForChecksum(ip))
		sb := gopacket.NewSerializeBuffer()
		require.NoError(t, gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, u, gopacket.Payload(payload)))
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0).Add(time.Duration(i) * time.Millisecond), CaptureLength: len(sb.Bytes()), Length: len(sb.Bytes())}
		require.NoError(t, w.WritePacket(ci, sb.Bytes()))
	}
	p := filepath.Join(t.TempDir(), "c.pcap")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func TestDupscopeCommandCountsKnownValueCopies(t *testing.T) {
	v := []byte("a value that is long enough to be found by its pieces")
	capPath := udpCapture(t, v, 3)
	vals := filepath.Join(t.TempDir(), "values")
	require.NoError(t, os.WriteFile(vals, append(v, '\n'), 0o644))
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"dupscope", "--known", vals, capPath}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "1 values, 53 bytes; 3 copies on the wire (2 repeats), 159 bytes; factor 3.00")
	code = run(context.Background(), []string{"dupscope"}, &out, &errOut)
	assert.Equal(t, 2, code, "no capture is a usage error")
}
