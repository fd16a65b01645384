package memnet

import (
	"context"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"
)

func TestSendCountsExactBytesAndMessagesPerSender(t *testing.T) {
	net := New(3)
	defer net.Close()
	require.NoError(t, net.Send(0, 1, make([]byte, 100)))
	require.NoError(t, net.Send(0, 2, make([]byte, 7)))
	require.NoError(t, net.Send(2, 1, make([]byte, 1)))
	s := net.Stats()
	require.Equal(t, uint64(108), s.Bytes)
	require.Equal(t, uint64(3), s.Messages)
	require.Equal(t, NodeStats{SentBytes: 107, SentMessages: 2}, s.Nodes[0])
	require.Equal(t, NodeStats{SentBytes: 1, SentMessages: 1}, s.Nodes[2])
	m, ok := net.TryRecv(1)
	require.True(t, ok)
	require.Equal(t, 0, m.From)
	require.Len(t, m.Data, 100)
	s2 := net.Stats()
	require.Equal(t, uint64(100), s2.Nodes[1].RecvBytes)
	require.Equal(t, uint64(1), s2.Nodes[1].RecvMessages)
	d := s2.Sub(s)
	require.Equal(t, uint64(0), d.Bytes)
	require.Equal(t, uint64(100), d.Nodes[1].RecvBytes)
	net.Account(1, 0, 50)
	require.Equal(t, uint64(158), net.Stats().Bytes)
}

func TestDeliversInOrderWithoutLoss(t *testing.T) {
	net := New(2)
	defer net.Close()
	const k = 5000 // past the queue's compaction threshold
	for i := range k {
		require.NoError(t, net.Send(0, 1, []byte{byte(i), byte(i >> 8)}))
		if i%3 == 0 {
			m, ok := net.TryRecv(1)
			require.True(t, ok)
			_ = m
		}
	}
	net2 := New(2)
	defer net2.Close()
	for i := range k {
		require.NoError(t, net2.Send(1, 0, []byte{byte(i), byte(i >> 8)}))
	}
	for i := range k {
		m, err := net2.Recv(context.Background(), 0)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i), byte(i >> 8)}, m.Data, "message %d", i)
	}
	require.Zero(t, net2.Pending(0))
}

func TestSendRejectsSelfAndOutOfRange(t *testing.T) {
	net := New(2)
	defer net.Close()
	require.Error(t, net.Send(0, 0, nil))
	require.Error(t, net.Send(0, 2, nil))
	require.Error(t, net.Send(-1, 1, nil))
	require.Zero(t, net.Stats().Messages)
}

func TestCloseUnblocksRecvAndFailsSend(t *testing.T) {
	defer leaktest.AfterTest(t)()
	net := New(2)
	errC := make(chan error)
	go func() {
		_, err := net.Recv(context.Background(), 1)
		errC <- err
	}()
	time.Sleep(10 * time.Millisecond)
	net.Close()
	require.ErrorIs(t, <-errC, ErrClosed)
	require.ErrorIs(t, net.Send(0, 1, []byte{1}), ErrClosed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	net2 := New(1)
	defer net2.Close()
	_, err := net2.Recv(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)
}
