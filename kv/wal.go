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
// and truncating the log replays nothing twice. A torn tail — a last
// record cut short or unreadable up to the end of the file, what a crash in
// the middle of a write leaves — ends the log and is cut off on recovery:
// nothing is acknowledged before SyncTo covers it, so only an
// unacknowledged record can be there. A bad record with more of the log
// after it is corruption, not a crash: Recover refuses with a
// *CorruptLogError naming the file and offset, unless
// WALOptions.TruncateCorrupt asks it to cut the log there (losing every
// record from it on).
type WAL struct {
	dir             string
	snapEvery       int
	noSync          bool
	truncateCorrupt bool

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
	// TruncateCorrupt makes Recover cut a corrupt log at its first bad
	// record instead of refusing to start.
	TruncateCorrupt bool
}

// CorruptLogError is a log with a bad record that is not its torn tail.
type CorruptLogError struct {
	File   string
	Offset int64  // of the bad record
	Record uint64 // the position expected there
	Reason string
}

func (e *CorruptLogError) Error() string {
	return fmt.Sprintf("kv: log %s is corrupt at offset %d (record %d: %s); records from there on are unreadable — "+
		"start with the truncate-corrupt option (onecast kv --truncate-corrupt-log) to cut the log there, losing them",
		e.File, e.Offset, e.Record, e.Reason)
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
	return &WAL{dir: dir, snapEvery: opts.SnapshotEvery, noSync: opts.NoSync, truncateCorrupt: opts.TruncateCorrupt, f: f}, nil
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
	st, err := w.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	br := bufio.NewReaderSize(w.f, 1<<20)
	var good int64
	var hdr [walRecHdr]byte
	var data []byte
	// bad judges the record at offset good, of n data bytes, that cannot
	// be used: a torn tail (it reaches the end of the file) is cut off; a
	// bad record with more log after it is corruption.
	bad := func(n int64, reason string) error {
		if good+walRecHdr+n >= size || w.truncateCorrupt {
			return nil
		}
		return &CorruptLogError{File: w.f.Name(), Offset: good, Record: w.pos + 1, Reason: reason}
	}
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break // clean end, or a header cut short: the tail
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		pos := binary.LittleEndian.Uint64(hdr[8:])
		if n > maxWALRecord {
			if err := bad(0, fmt.Sprintf("length %d", n)); err != nil {
				return err
			}
			break
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(br, data); err != nil {
			break // cut short: the tail
		}
		if crc32.Update(crc32.Checksum(hdr[8:16], castagnoli), castagnoli, data) != sum {
			if err := bad(int64(n), "checksum mismatch"); err != nil {
				return err
			}
			break
		}
		if pos > snapPos && pos != w.pos+1 {
			if err := bad(int64(n), fmt.Sprintf("position %d follows %d", pos, w.pos)); err != nil {
				return err
			}
			break
		}
		good += walRecHdr + int64(n)
		if pos <= snapPos {
			continue
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
