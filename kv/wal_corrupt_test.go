package kv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog appends count records of 100 bytes to a fresh WAL in dir.
func writeLog(t *testing.T, dir string, count int) {
	t.Helper()
	w, err := OpenWAL(dir, WALOptions{})
	require.NoError(t, err)
	require.NoError(t, w.Recover(func(uint64, []byte) error { return nil }, func(uint64, []byte) error { return nil }))
	for i := range count {
		rec := make([]byte, 100)
		copy(rec, fmt.Sprintf("record %d", i+1))
		pos, err := w.AppendVec([][]byte{rec})
		require.NoError(t, err)
		require.NoError(t, w.SyncTo(pos))
	}
	require.NoError(t, w.Close())
}

func recoverLog(dir string, opts WALOptions) ([]uint64, error) {
	w, err := OpenWAL(dir, opts)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var got []uint64
	err = w.Recover(func(uint64, []byte) error { return nil }, func(pos uint64, _ []byte) error {
		got = append(got, pos)
		return nil
	})
	return got, err
}

func TestWALCutsATornTailSilently(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 5)
	path := filepath.Join(dir, walFile)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, st.Size()-30)) // the last record cut short by a crash
	got, err := recoverLog(dir, WALOptions{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 2, 3, 4}, got)
	// A last record whose bytes are garbage up to the end is a tail too.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("garbage"), 3*(walRecHdr+100)+walRecHdr+10)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err = recoverLog(dir, WALOptions{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 2, 3}, got)
}

func TestWALRefusesACorruptRecordInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 5)
	path := filepath.Join(dir, walFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	off := int64(walRecHdr + 100) // record 2
	_, err = f.WriteAt([]byte("bitrot"), off+walRecHdr+20)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = recoverLog(dir, WALOptions{})
	var ce *CorruptLogError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, path, ce.File)
	assert.Equal(t, off, ce.Offset)
	assert.Equal(t, uint64(2), ce.Record)
	assert.Contains(t, err.Error(), "--truncate-corrupt-log")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, int64(5*(walRecHdr+100)), st.Size(), "a refused recovery changes nothing")

	got, err := recoverLog(dir, WALOptions{TruncateCorrupt: true})
	require.NoError(t, err)
	assert.Equal(t, []uint64{1}, got)
	got, err = recoverLog(dir, WALOptions{})
	require.NoError(t, err, "cut once, the log is clean")
	assert.Equal(t, []uint64{1}, got)
}
