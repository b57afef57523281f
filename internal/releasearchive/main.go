// Command releasearchive writes one release archive of scripts/release: a
// .tar.gz or a .zip holding a staged directory, reproducibly (entries in
// name order, one fixed modification time, owner root, modes 0755 for
// directories and executables and 0644 otherwise).
//
// It exists so that scripts/release needs neither Info-ZIP's zip nor GNU
// tar's --sort and --mtime: it uses only Go's standard library, which every
// machine that can build koobridge already has.
//
//	go run ./internal/releasearchive -o OUT.tar.gz|OUT.zip -mtime UNIX DIR
//
// DIR's base name becomes the archive's top directory.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "", "archive to write: NAME.tar.gz or NAME.zip")
	mtime := flag.Int64("mtime", 0, "modification time of every entry, in seconds since 1970 (e.g. SOURCE_DATE_EPOCH)")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: releasearchive -o OUT.tar.gz|OUT.zip -mtime UNIX DIR")
		os.Exit(2)
	}
	if err := write(*out, flag.Arg(0), time.Unix(*mtime, 0).UTC()); err != nil {
		slog.Error("releasearchive", "err", err)
		os.Exit(1)
	}
}

// entry is one file or directory of the archive.
type entry struct {
	name string // slash-separated, under the top directory; directories end in "/"
	src  string // path on disk; "" for directories
	mode fs.FileMode
	size int64
}

// write archives dir into out, in the format out's extension names. The
// name and dir are checked before out is created: a wrong -o must not
// truncate, then remove, a file that was there.
func write(out, dir string, mtime time.Time) error {
	var writeTo func(io.Writer, []entry, time.Time) error
	switch {
	case strings.HasSuffix(out, ".tar.gz"):
		writeTo = writeTarGz
	case strings.HasSuffix(out, ".zip"):
		writeTo = writeZip
	default:
		return fmt.Errorf("archive %s: name must end in .tar.gz or .zip", out)
	}
	entries, err := collect(dir)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	err = writeTo(f, entries, mtime)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close archive: %w", cerr)
	}
	if err != nil {
		_ = os.Remove(out)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// collect lists dir and everything under it in lexical order (WalkDir's
// order), named relative to dir's parent. Only regular files and
// directories may appear: a symbolic link would make the archive depend on
// what it points to.
func collect(dir string) ([]entry, error) {
	dir = filepath.Clean(dir)
	top := filepath.Base(dir)
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(top, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: name + "/", mode: fs.ModeDir | 0o755})
		case info.Mode().IsRegular():
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries = append(entries, entry{name: name, src: p, mode: mode, size: info.Size()})
		default:
			return fmt.Errorf("%s: only regular files and directories can be archived, not %s", p, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return entries, nil
}

func writeTarGz(w io.Writer, entries []entry, mtime time.Time) error {
	// A zero gzip header (no name, no time) keeps the bytes reproducible.
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    int64(e.mode.Perm()),
			ModTime: mtime,
			Format:  tar.FormatPAX,
			Uname:   "root",
			Gname:   "root",
		}
		if e.src == "" {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if e.src != "" {
			if err := copyFile(tw, e); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

func writeZip(w io.Writer, entries []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Modified: mtime}
		hdr.SetMode(e.mode)
		if e.src != "" {
			hdr.Method = zip.Deflate
		}
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return fmt.Errorf("zip header %s: %w", e.name, err)
		}
		if e.src != "" {
			if err := copyFile(fw, e); err != nil {
				return err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return nil
}

// copyFile copies e's file, which must still have the size it had when it
// was listed (a tar header promises it).
func copyFile(w io.Writer, e entry) error {
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("open %s: %w", e.src, err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.src, err)
	}
	if n != e.size {
		return errors.New("copy " + e.src + ": file changed size while being archived")
	}
	return nil
}
