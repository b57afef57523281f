package lockbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: every write arrives whole, with the race detector
// watching.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, _ = b.Write([]byte("ab\n"))
			_ = b.String()
		})
	}
	wg.Wait()
	if got := b.String(); strings.Count(got, "ab\n") != 50 || len(got) != 150 {
		t.Errorf("got %d bytes, %d lines", len(got), strings.Count(got, "\n"))
	}
}
