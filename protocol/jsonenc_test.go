package protocol

import (
	"encoding/json"
	"testing"
)

func TestMarshalEscapes(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"中文", `"\u4e2d\u6587"`},
		{"😀", `"\ud83d\ude00"`},
		{"a<b>&c", `"a<b>&c"`},
		{"é\u2028x", `"\u00e9\u2028x"`},
		{"ascii \"q\" \\ \n", `"ascii \"q\" \\ \n"`},
		{"\x7f", "\"\x7f\""},
		{"\uffff𐀀", `"\uffff\ud800\udc00"`},
	}
	for _, tc := range tests {
		got, err := Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Marshal(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != tc.in {
			t.Errorf("decode(Marshal(%q)) = %q, %v", tc.in, back, err)
		}
	}
}

func TestMarshalMapKeysAndNoNewline(t *testing.T) {
	got, err := Marshal(map[string]string{"键": "值", "a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"b","\u952e":"\u503c"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, err := Marshal(make(chan int)); err == nil {
		t.Fatal("Marshal(chan) succeeded")
	}
}
