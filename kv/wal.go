package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/onecast/onecast/bufpool"
)

// WAL is a data directory holding a write-ahead log and the latest
// snapshot:
//
//	dir/wal.log    records: len u32 | crc32c u32 | pos u64 | data
//	dir/snapshot   magic "KVSNAP01" | pos u64 | len u32 | crc32c u32 | data
//
// Positions number records 1, 2, 3 … across the directory's life. A
// snapshot at position P covers every record up to P; recovery restores it
// and replays the records after P, so a crash between writing a snapshot
// and truncating the log replays nothing twice. A torn or corrupt tail (a
// crash in the middle of a write) ends the log: it is cut off on recovery.
// Nothing is acknowledged before SyncTo covers it, so only unacknowledged
// records can be in that tail.
type WAL struct {
	dir       string
	snapEvery int
	noSync    bool

	mu        sync.Mutex // guards f, bw, pos, sinceSnap
	f         *os.File
	bw        *bufio.Writer
	pos       uint64
	sinceSnap int

	syncMu sync.Mutex // serializes fsyncs; guards synced
	synced uint64
}

// WALOptions configures a WAL.
type WALOptions struct {
	// SnapshotEvery is the number of records after which ShouldSnapshot
	// says yes (default 10000).
	SnapshotEvery int
	// NoSync skips fsync (tests and benchmarks of the CPU path only: a
	// crash of the machine then loses acknowledged writes).
	NoSync bool
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	walFile       = "wal.log"
	snapFile      = "snapshot"
	snapFileMagic = "KVSNAP01"
	walRecHdr     = 16
	maxWALRecord  = 1 << 30
)

// OpenWAL opens (creating if needed) the data directory dir. Call Recover
// before appending.
func OpenWAL(dir string, opts WALOptions) (*WAL, error) {
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = 10000
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kv: data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, walFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kv: open log: %w", err)
	}
	return &WAL{dir: dir, snapEvery: opts.SnapshotEvery, noSync: opts.NoSync, f: f}, nil
}

// Recover loads the snapshot, if any, into restore (with its position) and
// hands every later record, in order, to replay. It leaves the log ready
// for appending after the last good record.
func (w *WAL) Recover(restore func(pos uint64, snap []byte) error, replay func(pos uint64, rec []byte) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	snapPos, snap, err := readSnapshot(filepath.Join(w.dir, snapFile))
	if err != nil {
		return err
	}
	if snap != nil {
		if err := restore(snapPos, snap); err != nil {
			return fmt.Errorf("kv: restore snapshot at %d: %w", snapPos, err)
		}
	}
	w.pos = snapPos
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(w.f, 1<<20)
	var good int64
	var hdr [walRecHdr]byte
	var data []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		pos := binary.LittleEndian.Uint64(hdr[8:])
		if n > maxWALRecord {
			break
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(br, data); err != nil {
			break
		}
		if crc32.Update(crc32.Checksum(hdr[8:16], castagnoli), castagnoli, data) != sum {
			break
		}
		good += walRecHdr + int64(n)
		if pos <= snapPos {
			continue
		}
		if pos != w.pos+1 {
			return fmt.Errorf("kv: log record %d follows %d", pos, w.pos)
		}
		if err := replay(pos, data); err != nil {
			return fmt.Errorf("kv: replay record %d: %w", pos, err)
		}
		w.pos = pos
		w.sinceSnap++
	}
	if err := w.f.Truncate(good); err != nil {
		return fmt.Errorf("kv: cut torn log tail: %w", err)
	}
	if _, err := w.f.Seek(good, io.SeekStart); err != nil {
		return err
	}
	w.bw = bufio.NewWriterSize(w.f, 1<<20)
	w.synced = w.pos
	return nil
}

func readSnapshot(path string) (uint64, []byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("kv: read snapshot: %w", err)
	}
	if len(b) < 24 || string(b[:8]) != snapFileMagic {
		return 0, nil, fmt.Errorf("kv: snapshot %s: bad header", path)
	}
	pos := binary.LittleEndian.Uint64(b[8:])
	n := binary.LittleEndian.Uint32(b[16:])
	sum := binary.LittleEndian.Uint32(b[20:])
	if int(n) != len(b)-24 || crc32.Checksum(b[24:], castagnoli) != sum {
		return 0, nil, fmt.Errorf("kv: snapshot %s: corrupt", path)
	}
	return pos, b[24:], nil
}

// Append logs one record (borrowing rec) and returns its position. It is
// durable once SyncTo(pos) returns.
func (w *WAL) Append(rec bufpool.Buf) (uint64, error) {
	var parts [8][]byte
	return w.AppendVec(rec.AppendSegments(parts[:0]))
}

// AppendVec logs one record made of parts (borrowed) and returns its
// position.
func (w *WAL) AppendVec(parts [][]byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bw == nil {
		return 0, errors.New("kv: WAL appended before Recover")
	}
	w.pos++
	var hdr [walRecHdr]byte
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	binary.LittleEndian.PutUint32(hdr[0:], uint32(n))
	binary.LittleEndian.PutUint64(hdr[8:], w.pos)
	sum := crc32.Checksum(hdr[8:16], castagnoli)
	for _, seg := range parts {
		sum = crc32.Update(sum, castagnoli, seg)
	}
	binary.LittleEndian.PutUint32(hdr[4:], sum)
	w.bw.Write(hdr[:])
	for _, seg := range parts {
		if _, err := w.bw.Write(seg); err != nil {
			return 0, fmt.Errorf("kv: write log: %w", err)
		}
	}
	w.sinceSnap++
	return w.pos, nil
}

// SyncTo returns once every record up to pos is on disk. Concurrent callers
// share fsyncs.
func (w *WAL) SyncTo(pos uint64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= pos {
		return nil
	}
	w.mu.Lock()
	target := w.pos
	err := w.bw.Flush()
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("kv: flush log: %w", err)
	}
	if !w.noSync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("kv: fsync log: %w", err)
		}
	}
	w.synced = target
	return nil
}

// Pos returns the position of the last record appended.
func (w *WAL) Pos() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pos
}

// ShouldSnapshot reports whether SnapshotEvery records were logged since
// the last snapshot.
func (w *WAL) ShouldSnapshot() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sinceSnap >= w.snapEvery
}

// WriteSnapshot durably stores snap as the state after record pos, then
// empties the log. The caller must not Append concurrently, and pos must be
// the last record appended.
func (w *WAL) WriteSnapshot(pos uint64, snap []byte) error {
	if err := w.SyncTo(pos); err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, snapFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	var hdr [24]byte
	copy(hdr[:], snapFileMagic)
	binary.LittleEndian.PutUint64(hdr[8:], pos)
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(snap)))
	binary.LittleEndian.PutUint32(hdr[20:], crc32.Checksum(snap, castagnoli))
	_, err = f.Write(hdr[:])
	if err == nil {
		_, err = f.Write(snap)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kv: write snapshot: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, snapFile)); err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("kv: truncate log: %w", err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.sinceSnap = 0
	return w.f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close flushes and closes the log (without fsync: call SyncTo first for
// durability).
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bw != nil {
		w.bw.Flush()
	}
	return w.f.Close()
}
