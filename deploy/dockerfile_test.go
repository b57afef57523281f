package deploy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// instruction is one Dockerfile instruction with its --flags split off.
type instruction struct {
	line  int
	cmd   string            // upper case: FROM, RUN, COPY, …
	flags map[string]string // --from=build → from: build
	args  string            // the rest, continuation lines joined
}

// exec returns the instruction's arguments in exec (JSON) form, or an error
// for the shell form.
func (in instruction) exec() ([]string, error) {
	var argv []string
	if !strings.HasPrefix(in.args, "[") || json.Unmarshal([]byte(in.args), &argv) != nil || len(argv) == 0 {
		return nil, fmt.Errorf("line %d: %s %s is not in exec form (a JSON array of strings)", in.line, in.cmd, in.args)
	}
	return argv, nil
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	from     instruction
	image    string // the base image reference
	name     string // AS name, or ""
	commands []instruction
}

// all returns the stage's instructions named cmd.
func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.commands {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the stage's last instruction named cmd, the one in effect
// for single-valued ones (USER, WORKDIR, CMD, …).
func (s *stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

// env returns the stage's ENV settings, later ones winning.
func (s *stage) env() (map[string]string, error) {
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		pairs, err := splitWords(in.args)
		if err != nil {
			return nil, fmt.Errorf("line %d: ENV: %w", in.line, err)
		}
		for _, p := range pairs {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("line %d: ENV %q: want KEY=VALUE", in.line, p)
			}
			env[k] = v
		}
	}
	return env, nil
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM and the
// stages.
type dockerfile struct {
	globalArgs []instruction
	stages     []*stage
}

// stageNamed returns the stage called name.
func (d *dockerfile) stageNamed(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// final is the stage the image is made of.
func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

// flagged lists the instructions that take --flags before their arguments.
var flagged = map[string]bool{"FROM": true, "RUN": true, "COPY": true, "ADD": true, "HEALTHCHECK": true}

// parseDockerfile parses the subset of the Dockerfile syntax koobridge's
// Dockerfile uses: comments, parser directives, backslash continuations,
// --flags, and FROM … AS name. Heredocs and a changed escape character are
// refused rather than misread.
func parseDockerfile(src string) (*dockerfile, error) {
	d := &dockerfile{}
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			if strings.HasPrefix(strings.ReplaceAll(line, " ", ""), "#escape=") {
				return nil, fmt.Errorf("line %d: escape directives are not supported", start)
			}
			continue
		}
		// Continuation lines; comment lines inside are dropped, as Docker does.
		for strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`)
			i++
			for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
				i++
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: continuation at the end of the file", start)
			}
			line += " " + strings.TrimSpace(lines[i])
		}
		if strings.Contains(line, "<<") {
			return nil, fmt.Errorf("line %d: heredocs are not supported", start)
		}
		keyword, rest, _ := strings.Cut(line, " ")
		in := instruction{line: start, cmd: strings.ToUpper(keyword), flags: map[string]string{}, args: strings.TrimSpace(rest)}
		if flagged[in.cmd] {
			for strings.HasPrefix(in.args, "--") {
				word, after, _ := strings.Cut(in.args, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(word, "--"), "=")
				if _, dup := in.flags[k]; dup && k != "mount" {
					return nil, fmt.Errorf("line %d: %s --%s given twice", start, in.cmd, k)
				}
				in.flags[k] = v
				in.args = strings.TrimSpace(after)
			}
		}
		switch {
		case in.cmd == "FROM":
			words := strings.Fields(in.args)
			s := &stage{from: in}
			switch {
			case len(words) == 1:
			case len(words) == 3 && strings.EqualFold(words[1], "AS"):
				s.name = words[2]
			default:
				return nil, fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", start, in.args)
			}
			s.image = words[0]
			d.stages = append(d.stages, s)
		case len(d.stages) == 0:
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
			}
			d.globalArgs = append(d.globalArgs, in)
		default:
			s := d.stages[len(d.stages)-1]
			s.commands = append(s.commands, in)
		}
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

// splitWords splits on unquoted white space; double and single quotes group
// and are removed, a backslash escapes the next character.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != '\'' && r == '\\' && i+1 < len(runes):
			i++
			cur.WriteRune(runes[i])
			in = true
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
			in = true
		case unicode.IsSpace(r):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestParseDockerfile(t *testing.T) {
	src := `# syntax=docker/dockerfile:1
ARG GO=1
FROM --platform=$BUILDPLATFORM golang:1 AS build
RUN --mount=type=cache,target=/a --mount=type=cache,target=/b \
    # a comment inside a continuation
    echo one \
    two
FROM scratch
ENV A=1 B="two words" \
    C=sqlite:/data/x.db
COPY --from=build --chown=1:2 /out/x /x
HEALTHCHECK --interval=5s CMD ["/x", "check"]
CMD ["serve"]
`
	d, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.globalArgs) != 1 || len(d.stages) != 2 {
		t.Fatalf("got %d global ARGs and %d stages, want 1 and 2", len(d.globalArgs), len(d.stages))
	}
	b := d.stageNamed("build")
	if b == nil || b.image != "golang:1" || b.from.flags["platform"] != "$BUILDPLATFORM" {
		t.Fatalf("build stage = %+v", b)
	}
	run := b.all("RUN")
	if len(run) != 1 || run[0].args != "echo one  two" || run[0].flags["mount"] == "" {
		t.Fatalf("RUN = %+v", run)
	}
	env, err := d.final().env()
	if err != nil {
		t.Fatal(err)
	}
	if env["A"] != "1" || env["B"] != "two words" || env["C"] != "sqlite:/data/x.db" {
		t.Fatalf("ENV = %v", env)
	}
	cp := d.final().all("COPY")
	if len(cp) != 1 || cp[0].flags["from"] != "build" || cp[0].flags["chown"] != "1:2" || cp[0].args != "/out/x /x" {
		t.Fatalf("COPY = %+v", cp)
	}
	hc, _ := d.final().last("HEALTHCHECK")
	if hc.flags["interval"] != "5s" || hc.args != `CMD ["/x", "check"]` {
		t.Fatalf("HEALTHCHECK = %+v", hc)
	}
	cmd, _ := d.final().last("CMD")
	if argv, err := cmd.exec(); err != nil || len(argv) != 1 || argv[0] != "serve" {
		t.Fatalf("CMD = %v, %v", argv, err)
	}
	shell := instruction{cmd: "CMD", args: "serve --dev"}
	if _, err := shell.exec(); err == nil {
		t.Fatal("the shell form passed for the exec form")
	}
	for _, bad := range []string{"RUN x", "FROM a b", "FROM a\nRUN x <<EOF\nEOF", "# escape=`\nFROM a"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q) succeeded", bad)
		}
	}
}
