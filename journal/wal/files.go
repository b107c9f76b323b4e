// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cairnmq/cairn/journal"
)

// Names inside a journal directory.
const (
	segmentDir   = "wal"       // tidwall/wal's segment files
	manifestName = "MANIFEST"  // logical first index and the sealed segments
	snapshotDir  = "snapshots" // <index>.snap
	brokenSuffix = ".broken"   // bytes cut by a repair
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segInfo is one segment file: the records [first, last] in bytes bytes.
type segInfo struct {
	first, last uint64
	bytes       int64
}

func (s segInfo) name() string { return segmentName(s.first) }

// segmentName is tidwall/wal's file name for the segment starting at index.
func segmentName(first uint64) string { return fmt.Sprintf("%020d", first) }

// manifest is the durable record of what the journal holds beyond the
// segment files themselves: the logical first index (TruncateFront moves it
// without rewriting any segment) and every sealed segment with its index
// range and size. Sealed segments never change, so a missing or resized
// sealed segment is detected at open without reading it.
type manifest struct {
	first  uint64
	sealed []segInfo
}

const manifestMagic = "CAIRNMF1"

func (m *manifest) encode() []byte {
	b := make([]byte, 0, 8+8+4+24*len(m.sealed)+4)
	b = append(b, manifestMagic...)
	b = binary.LittleEndian.AppendUint64(b, m.first)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.sealed)))
	for _, s := range m.sealed {
		b = binary.LittleEndian.AppendUint64(b, s.first)
		b = binary.LittleEndian.AppendUint64(b, s.last)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.bytes))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeManifest(b []byte) (*manifest, error) {
	if len(b) < 24 || string(b[:8]) != manifestMagic {
		return nil, errors.New("not a Cairn manifest (bad magic or too short)")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("manifest crc32c mismatch")
	}
	m := &manifest{first: binary.LittleEndian.Uint64(b[8:])}
	n := binary.LittleEndian.Uint32(b[16:])
	if uint64(len(body)) != 20+24*uint64(n) {
		return nil, fmt.Errorf("manifest length %d does not fit %d segments", len(b), n)
	}
	for i := range int(n) {
		p := body[20+24*i:]
		m.sealed = append(m.sealed, segInfo{
			first: binary.LittleEndian.Uint64(p),
			last:  binary.LittleEndian.Uint64(p[8:]),
			bytes: int64(binary.LittleEndian.Uint64(p[16:])),
		})
	}
	return m, nil
}

// readManifest returns nil, nil when there is none.
func readManifest(dir string) (*manifest, error) {
	path := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(b)
	if err != nil {
		return nil, &journal.CorruptionError{Path: path, Reason: err.Error()}
	}
	return m, nil
}

func writeManifest(dir string, m *manifest) error {
	return writeFileAtomic(filepath.Join(dir, manifestName), m.encode())
}

// writeFileAtomic replaces path with data: write a temporary file, fsync it,
// rename it over path, fsync the directory (etcd's cut()).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, journal.FileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the creation, rename and removal of dir's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// segFile is a segment file found in the directory.
type segFile struct {
	first uint64
	path  string
	size  int64
}

// listSegments lists dir/wal's segment files by first index. Files that
// tidwall/wal would act on but Cairn never writes (its .START, .END and
// .TEMP files from a truncation) are refused: opening tidwall/wal on them
// would delete segments.
func listSegments(walDir string) ([]segFile, error) {
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return nil, err
	}
	var out []segFile
	for _, e := range ents {
		name := e.Name()
		if len(name) < 20 {
			continue
		}
		idx, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || idx == 0 {
			continue
		}
		path := filepath.Join(walDir, name)
		if len(name) != 20 || e.IsDir() {
			if strings.HasSuffix(name, ".START") || strings.HasSuffix(name, ".END") || strings.HasSuffix(name, ".TEMP") {
				return nil, &journal.CorruptionError{Path: path, Index: idx,
					Reason: "tidwall/wal truncation file, which Cairn never writes; remove it by hand after checking where it came from"}
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, segFile{first: idx, path: path, size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out, nil
}
