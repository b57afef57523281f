package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeRefusesWhileOpeningDatabase: outside --dev, serve checks its
// address at once but takes it only once the database is open and
// migrated. A replica whose database does not answer (down, or another
// replica holding the migration lock) refuses connections meanwhile, so a
// load balancer's TCP check does not count it as up; before, it accepted
// them and answered nothing.
func TestServeRefusesWhileOpeningDatabase(t *testing.T) {
	// A "database" that accepts connections and never answers.
	dbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dbLn.Close()
	connected := make(chan struct{}, 1)
	go func() {
		for {
			c, err := dbLn.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	}()

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		var stdout bytes.Buffer
		done <- run([]string{"serve", "--listen", addr,
			"--db", "postgres://koobridge@" + dbLn.Addr().String() + "/koobridge?sslmode=disable",
			"--key", "0123456789abcdef0123456789abcdef", "--ak", "test-ak", "--sk", "test-sk",
			"--data-key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "--log-level", "error",
		}, strings.NewReader(""), &stdout, &stderr)
	}()

	select {
	case <-connected: // serve is opening the database
	case code := <-done:
		t.Fatalf("serve stopped before it opened the database: exit %d\n%s", code, stderr.String())
	case <-ctx.Done():
		t.Fatal("serve never connected to the database")
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection while serve was still opening its database", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s while the database opens: %v, want connection refused", addr, err)
	}
	select {
	case code := <-done:
		if code == exitOK {
			t.Fatalf("serve exited 0 without a database")
		}
	case <-ctx.Done():
		t.Fatal("serve did not give up on a database that never answers")
	}
}
