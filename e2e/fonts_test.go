package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// cjkSample is Chinese text the pages show: the emulator's re-drive button
// (重新启动) and its last-error label (异常信息). Eight distinct characters.
const cjkSample = "重新启动异常信息"

// glyphsJS draws each character of a sample (%s, a JSON string), a
// code point no font has (U+10FFFD, private use) and nothing, each alone in
// a canvas in the default sans-serif font, and returns each drawing as a
// PNG data URL. A character no installed font covers is drawn as the
// missing-glyph box, the same picture as the code point no font has.
const glyphsJS = `(() => {
	const c = document.createElement('canvas');
	c.width = 64; c.height = 64;
	const g = c.getContext('2d', {willReadFrequently: true});
	const draw = ch => {
		g.fillStyle = '#fff';
		g.fillRect(0, 0, c.width, c.height);
		g.fillStyle = '#000';
		g.font = '48px sans-serif';
		g.textBaseline = 'top';
		g.fillText(ch, 4, 4);
		return c.toDataURL('image/png');
	};
	return {blank: draw(''), box: draw(String.fromCodePoint(0x10FFFD)), glyphs: [...%s].map(draw)};
})()`

// TestChineseTextRendersInChromium checks that Chromium has a font for the
// Chinese text the pages show (the emulator's labels, its violations'
// messages, memos): without one, 重新启动 shows as four boxes on the pages
// and in the screenshots in docs/images.
func TestChineseTextRendersInChromium(t *testing.T) {
	checkChineseRenders(NewBrowser(t), t, cjkSample)
}

// checkChineseRenders fails the test when Chromium, in the tab of ctx,
// draws a character of sample as the missing-glyph box, naming the
// package to install. It draws each character in a canvas on a blank page
// and compares it with the drawing of a code point no font has (the box).
func checkChineseRenders(ctx context.Context, t *testing.T, sample string) {
	t.Helper()
	var chars []rune
	for _, r := range sample {
		if !slices.Contains(chars, r) {
			chars = append(chars, r)
		}
	}
	js, err := json.Marshal(string(chars))
	if err != nil {
		t.Fatal(err)
	}
	Do(ctx, t, "open a blank page", chromedp.Navigate("about:blank"))
	type drawings struct {
		Box    string   `json:"box"`
		Glyphs []string `json:"glyphs"`
		Blank  string   `json:"blank"`
	}
	d := Get(ctx, t, "draw "+sample, chromedp.Evaluate[drawings](fmt.Sprintf(glyphsJS, js)))
	if len(d.Glyphs) != len(chars) {
		t.Fatalf("drew %d characters, want %d", len(d.Glyphs), len(chars))
	}
	if d.Box == d.Blank {
		t.Fatalf("the code point no font has (U+10FFFD) drew nothing; the test cannot tell a box from a glyph")
	}

	var boxes []string
	seen := map[string]rune{}
	for i, png := range d.Glyphs {
		switch prev, dup := seen[png]; {
		case png == d.Box:
			boxes = append(boxes, string(chars[i]))
		case png == d.Blank:
			t.Errorf("%c drew nothing", chars[i])
		case dup:
			t.Errorf("%c and %c drew the same picture", prev, chars[i])
		}
		seen[png] = chars[i]
	}
	if len(boxes) > 0 {
		t.Fatalf("Chromium has no font for Chinese text: %s drew as the missing-glyph box, so the pages (and the screenshots in docs/images) show boxes. Install a CJK font: apt-get install fonts-noto-cjk (.ci/run does when `fc-list :lang=zh` is empty).%s",
			strings.Join(boxes, " "), fcListZh())
	}
}

// fcListZh returns what fontconfig lists for Chinese, for the failure
// message, or "" when fc-list is missing.
func fcListZh() string {
	out, err := exec.Command("fc-list", ":lang=zh", "family").Output()
	if err != nil {
		return ""
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return "\nfc-list :lang=zh lists: " + s
	}
	return "\nfc-list :lang=zh lists no font."
}
