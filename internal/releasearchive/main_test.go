package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stageTree writes a small release directory: an executable, a document
// and a nested directory.
func stageTree(t *testing.T, mtime time.Time) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "koobridge_v1_linux_amd64")
	files := map[string]struct {
		body string
		mode os.FileMode
	}{
		"koobridge":    {"#!binary", 0o700},
		"README.md":    {"# readme\n", 0o600},
		"docs/cli.md":  {"cli\n", 0o644},
		"docs/b/x.txt": {"x\n", 0o664},
	}
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// member is one archive entry as an unpacker sees it.
type member struct {
	mode  os.FileMode
	mtime time.Time
	body  string
}

// wantMembers is what stageTree's directory must archive to.
var wantMembers = map[string]member{
	"koobridge_v1_linux_amd64/":             {mode: os.ModeDir | 0o755},
	"koobridge_v1_linux_amd64/README.md":    {mode: 0o644, body: "# readme\n"},
	"koobridge_v1_linux_amd64/docs/":        {mode: os.ModeDir | 0o755},
	"koobridge_v1_linux_amd64/docs/b/":      {mode: os.ModeDir | 0o755},
	"koobridge_v1_linux_amd64/docs/b/x.txt": {mode: 0o644, body: "x\n"},
	"koobridge_v1_linux_amd64/docs/cli.md":  {mode: 0o644, body: "cli\n"},
	"koobridge_v1_linux_amd64/koobridge":    {mode: 0o755, body: "#!binary"},
}

// TestWriteReproducible: both formats hold every file with normalized
// modes and the given time, in name order, and archiving the same content
// again (other file times, other directory) gives the same bytes.
func TestWriteReproducible(t *testing.T) {
	mtime := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	for _, ext := range []string{".tar.gz", ".zip"} {
		t.Run(ext, func(t *testing.T) {
			var archives [2][]byte
			for i, fileTime := range []time.Time{time.Unix(1e9, 0), time.Now()} {
				out := filepath.Join(t.TempDir(), "a"+ext)
				if err := write(out, stageTree(t, fileTime), mtime); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				archives[i] = b
			}
			if !bytes.Equal(archives[0], archives[1]) {
				t.Error("two archives of the same content differ")
			}
			names, members := readArchive(t, ext, archives[0])
			if strings.Join(names, " ") != "koobridge_v1_linux_amd64/ koobridge_v1_linux_amd64/README.md koobridge_v1_linux_amd64/docs/ koobridge_v1_linux_amd64/docs/b/ koobridge_v1_linux_amd64/docs/b/x.txt koobridge_v1_linux_amd64/docs/cli.md koobridge_v1_linux_amd64/koobridge" {
				t.Errorf("entries in order %q", names)
			}
			for name, want := range wantMembers {
				got, ok := members[name]
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if got.mode != want.mode || got.body != want.body || !got.mtime.Equal(mtime) {
					t.Errorf("%s = mode %v, time %v, %q; want %v, %v, %q", name, got.mode, got.mtime, got.body, want.mode, mtime, want.body)
				}
			}
		})
	}
}

// readArchive returns an archive's entry names in order and the entries.
func readArchive(t *testing.T, ext string, b []byte) ([]string, map[string]member) {
	t.Helper()
	var names []string
	members := map[string]member{}
	switch ext {
	case ".tar.gz":
		gz, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
			members[h.Name] = member{mode: h.FileInfo().Mode() & (os.ModeDir | os.ModePerm), mtime: h.ModTime, body: string(body)}
		}
	case ".zip":
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, f.Name)
			members[f.Name] = member{mode: f.Mode() & (os.ModeDir | os.ModePerm), mtime: f.Modified, body: string(body)}
		}
	}
	return names, members
}

// TestWriteRefuses: a symbolic link (whose archive would depend on its
// target), an unknown format and a missing directory are errors that leave
// no archive behind, and a file already at the output's name as it was
// (-o notes.txt must not truncate, then remove, notes.txt).
func TestWriteRefuses(t *testing.T) {
	linked := stageTree(t, time.Now())
	if err := os.Symlink("README.md", filepath.Join(linked, "docs", "link.md")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, out, want string
	}{
		{"symbolic link", linked, "a.tar.gz", "only regular files and directories"},
		{"unknown format", stageTree(t, time.Now()), "a.tar.bz2", "must end in .tar.gz or .zip"},
		{"unknown format, a document", stageTree(t, time.Now()), "notes.txt", "must end in .tar.gz or .zip"},
		{"missing directory", filepath.Join(t.TempDir(), "nope"), "a.zip", "no such file"},
	}
	for _, tt := range tests {
		for _, existing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/existing=%v", tt.name, existing), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), tt.out)
				const kept = "a file that was there before\n"
				if existing {
					if err := os.WriteFile(out, []byte(kept), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				err := write(out, tt.dir, time.Now())
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("write = %v, want an error with %q", err, tt.want)
				}
				b, err := os.ReadFile(out)
				switch {
				case !existing && !os.IsNotExist(err):
					t.Errorf("%s left behind (%v)", out, err)
				case existing && (err != nil || string(b) != kept):
					t.Errorf("the file that was at %s: %q, %v; want it unchanged", out, b, err)
				}
			})
		}
	}
}
