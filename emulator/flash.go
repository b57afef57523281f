package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// maxFlashes bounds the flash messages kept; the oldest go first.
const maxFlashes = 200

// flashes keeps the one-line summaries the web page shows after a form,
// keyed by a random ID that the redirect carries. The text never travels
// in the URL, so a link cannot make the page say anything.
type flashes struct {
	mu    sync.Mutex
	text  map[string]func() string
	order []string // keys, oldest first
}

func newFlashes() *flashes {
	return &flashes{text: make(map[string]func() string)}
}

// put keeps text and returns its key.
func (f *flashes) put(text string) string {
	return f.putFunc(func() string { return text })
}

// putFunc keeps a summary written afresh each time the page is shown (a
// run that was pending says how it ended), and returns its key.
func (f *flashes) putFunc(text func() string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	key := hex.EncodeToString(b[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	f.text[key] = text
	f.order = append(f.order, key)
	if len(f.order) > maxFlashes {
		delete(f.text, f.order[0])
		f.order = f.order[1:]
	}
	return key
}

// get returns the text kept under key, "" if none.
func (f *flashes) get(key string) string {
	if key == "" {
		return ""
	}
	f.mu.Lock()
	text := f.text[key]
	f.mu.Unlock()
	if text == nil {
		return ""
	}
	return text()
}
