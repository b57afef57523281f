package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/store"
)

// devFileSuffix names the file beside an SQLite database where "serve
// --dev" keeps the secrets it generated: koobridge.db.dev.yaml.
const devFileSuffix = ".dev.yaml"

// devTempSuffix is the os.CreateTemp pattern of the temporary file save
// writes before renaming it to the dev file: koobridge.db.dev.yaml.123.tmp,
// left behind only by a crash.
const devTempSuffix = ".*.tmp"

// The settings --dev supplies when they are not given, as the dev file
// names them (the flags' names).
const (
	devKey        = "key"
	devDataKey    = "data-key"
	devAdminToken = "admin-token"
)

// devFile is the dev file's content.
type devFile struct {
	Key        string `yaml:"key,omitempty"`
	DataKey    string `yaml:"data-key,omitempty"`
	AdminToken string `yaml:"admin-token,omitempty"`
}

func (f *devFile) field(name string) *string {
	switch name {
	case devKey:
		return &f.Key
	case devDataKey:
		return &f.DataKey
	default:
		return &f.AdminToken
	}
}

// devSecrets are the secrets "serve --dev" supplied for the settings not
// given: read from the dev file beside an SQLite database, or generated
// and then kept there, so that a restart on the same database signs with
// the same key, reads the passwords sealed with the same data key and
// lets the same admin token into the console. With another database
// nothing is kept (path is empty): each start generates them anew.
type devSecrets struct {
	path      string  // the dev file; "" when the database is not SQLite
	file      devFile // what the file holds, plus what was generated now
	supplied  map[string]string
	generated map[string]bool // supplied by generating now (else: read)
	// dbExisted: the SQLite file was there, not empty, before this start.
	// A data key generated for it cannot read what it sealed before.
	dbExisted bool
	// warnings are about the kept file (its permissions), for the log.
	warnings []string
}

// lostDataKey reports whether a data key was generated now for a
// database that already existed: whatever it sealed under its earlier
// data key (kept in a dev file since removed, or given some other way)
// cannot be unsealed with the new one.
func (d *devSecrets) lostDataKey() bool {
	return d != nil && d.dbExisted && d.generated[devDataKey]
}

// loadDevSecrets reads the dev file of the database dsn, if there is one.
// A file that cannot be read or does not parse is an error naming it: a
// silent regeneration would lose the data key of the passwords sealed in
// the database. So is a file with more than one YAML document, or a value
// with a control character (a line break or tab pasted in): the file
// holds exactly what save writes. A file that group or others may read or
// write is used, with a warning (not on Windows, whose permissions Go
// does not report as bits).
func loadDevSecrets(dsn string) (*devSecrets, error) {
	d := &devSecrets{supplied: map[string]string{}, generated: map[string]bool{}}
	db, ok := sqliteFile(dsn)
	if !ok {
		return d, nil
	}
	// Before the store opens it, which creates it.
	if st, err := os.Stat(db); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		d.dbExisted = true
	}
	d.path = db + devFileSuffix
	f, err := os.Open(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, usageErrorf("--dev: read the kept secrets: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, usageErrorf("--dev: read the kept secrets: %v", err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, usageErrorf("--dev: read the kept secrets: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		d.warnings = append(d.warnings, fmt.Sprintf("--dev: %s has mode %04o: group or others may read the secrets in it; chmod 600 it", d.path, perm))
	}
	bad := func(what string) error {
		return usageErrorf("--dev: %s: %s (fix it, or remove it together with the database)", d.path, what)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&d.file); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty")
		}
		return nil, bad(err.Error())
	}
	// One document only: a second one would be ignored without a word.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, bad("more than one YAML document (a line ---)")
	}
	// Each setting present is a non-empty string, as save writes it: an
	// empty one would be generated anew without a word (a new data key
	// loses what the old one sealed), and a number is not what was kept.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			if v := m[i+1]; v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
				return nil, bad(m[i].Value + ": not a non-empty string (remove the line to generate a new one)")
			}
		}
	}
	for _, name := range []string{devKey, devDataKey, devAdminToken} {
		if strings.ContainsFunc(*d.file.field(name), unicode.IsControl) {
			return nil, bad(name + ": has a control character (a line break or tab) in it")
		}
	}
	if k := d.file.Key; k != "" && strings.TrimSpace(k) != k {
		return nil, bad("key: has white space around it")
	}
	if k := d.file.DataKey; k != "" {
		if _, err := seal.ParseKey(k); err != nil {
			return nil, bad("data-key: not the base64 of 32 bytes")
		}
	}
	if t := d.file.AdminToken; t != "" && len(t) < 16 {
		return nil, bad("admin-token: shorter than 16 characters")
	}
	return d, nil
}

// supply returns the kept value of setting name, or a new one from gen,
// which the file then keeps (save).
func (d *devSecrets) supply(name string, gen func() (string, error)) (string, error) {
	if v := *d.file.field(name); v != "" {
		d.supplied[name] = v
		return v, nil
	}
	v, err := gen()
	if err != nil {
		return "", fmt.Errorf("--dev: generate %s: %w", name, err)
	}
	*d.file.field(name) = v
	d.supplied[name], d.generated[name] = v, true
	return v, nil
}

// newAdminToken is a fresh admin token: 32 random bytes in hex, as
// "openssl rand -hex 32" makes one.
func newAdminToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// save writes the dev file when something was generated: mode 0600,
// atomically (a temporary file in the same directory, renamed), so that a
// crash leaves either the old file or the new one, never half of one.
func (d *devSecrets) save() error {
	if d == nil || d.path == "" || len(d.generated) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# koobridge serve --dev: secrets it generated for the database %s.\n", filepath.Base(strings.TrimSuffix(d.path, devFileSuffix)))
	b.WriteString("# Read back on every --dev start on that database; a flag, environment variable or\n")
	b.WriteString("# --config setting wins over them. Keep this file private, and as long as the database:\n")
	b.WriteString("# the data key seals the app-info passwords in it.\n")
	for _, name := range []string{devKey, devDataKey, devAdminToken} {
		if v := *d.file.field(name); v != "" {
			// Double-quoted: base64 and hex need no escapes, and no value
			// is read back as a number.
			fmt.Fprintf(&b, "%s: %q\n", name, v)
		}
	}
	dir, base := filepath.Split(d.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+devTempSuffix) // 0600
	if err != nil {
		return fmt.Errorf("--dev: keep the secrets in %s: %w", d.path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.WriteString(b.String()); err != nil {
		return fmt.Errorf("--dev: keep the secrets in %s: %w", d.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("--dev: keep the secrets in %s: %w", d.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--dev: keep the secrets in %s: %w", d.path, err)
	}
	if err := os.Rename(tmp.Name(), d.path); err != nil {
		_ = os.Remove(tmp.Name())
		done = true
		return fmt.Errorf("--dev: keep the secrets in %s: %w", d.path, err)
	}
	done = true
	return nil
}

// sqliteFile returns the file of an SQLite database setting, as the
// store opens it: "sqlite:path", "sqlite://path" ("sqlite:///abs"),
// "file:" URIs and bare paths, parameters after "?" dropped. It is false
// for PostgreSQL.
func sqliteFile(dsn string) (string, bool) {
	if store.IsPostgres(dsn) {
		return "", false
	}
	s := strings.TrimSpace(dsn)
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		s = strings.TrimPrefix(s, "sqlite://")
	case strings.HasPrefix(s, "sqlite:"):
		s = strings.TrimPrefix(s, "sqlite:")
	}
	if strings.HasPrefix(s, "file:") {
		// An SQLite URI: the driver reads it as a URL.
		if u, err := url.Parse(s); err == nil {
			s = u.Path // unescaped already
			if s == "" {
				// "file:my%20db.db": the driver opens "my db.db".
				if s, err = url.PathUnescape(u.Opaque); err != nil {
					s = u.Opaque
				}
			}
		} else {
			s = strings.TrimPrefix(s, "file:")
		}
	}
	s, _, _ = strings.Cut(s, "?")
	return s, s != ""
}

// consoleURL is where the console of a server listening on addr is
// reached from the same machine: an unspecified host (":8080",
// "0.0.0.0", "::") is reached as localhost.
func consoleURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/admin/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/admin/"
}
