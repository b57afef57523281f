package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// The device fingerprint of license-openapi.md §D.3:
// "${mac}|${diskId}|${boardId}|${cpuId}" in upper case, a missing part
// left empty, several values joined with commas. Huawei's client SDK
// computes it on Windows; here it is computed from what Linux shows, as
// far as it shows it, so that "koobridge license activate" can stand in
// for a client on this machine. The vendor's own software computes its
// own and sends it; the license service only hashes what it gets.

// machineFingerprint computes the fingerprint of the machine whose root
// file system is fsys (os.DirFS("/")).
func machineFingerprint(fsys fs.FS) string {
	return strings.ToUpper(strings.Join([]string{
		fingerprintMACs(fsys), fingerprintDisks(fsys), fingerprintBoard(fsys), fingerprintCPU(fsys),
	}, "|"))
}

// fingerprintMACs lists the MAC addresses of the physical network
// interfaces (those with a device behind them), or of every interface but
// loopback when none is physical (a virtual machine's may not be).
func fingerprintMACs(fsys fs.FS) string {
	entries, err := fs.ReadDir(fsys, "sys/class/net")
	if err != nil {
		return ""
	}
	var physical, other []string
	for _, e := range entries {
		dir := "sys/class/net/" + e.Name()
		b, err := fs.ReadFile(fsys, dir+"/address")
		mac := strings.TrimSpace(string(b))
		if err != nil || e.Name() == "lo" || mac == "" || strings.Trim(mac, "0:") == "" {
			continue
		}
		if _, err := fs.Stat(fsys, dir+"/device"); err == nil {
			physical = append(physical, mac)
		} else {
			other = append(other, mac)
		}
	}
	if len(physical) == 0 {
		physical = other
	}
	return joinSorted(physical)
}

// fingerprintDisks lists the serial numbers of the disks, from the names
// udev gives them in /dev/disk/by-id ("ata-<model>_<serial>",
// "nvme-<model>_<serial>"; without those, "scsi-…" and "virtio-<serial>"),
// partitions and the EUI/WWN aliases left out.
func fingerprintDisks(fsys fs.FS) string {
	entries, err := fs.ReadDir(fsys, "dev/disk/by-id")
	if err != nil {
		return ""
	}
	var preferred, fallback []string
	for _, e := range entries {
		name := e.Name()
		if strings.Contains(name, "-part") || strings.HasPrefix(name, "nvme-eui.") || strings.HasPrefix(name, "nvme-nvme.") {
			continue
		}
		kind, rest, ok := strings.Cut(name, "-")
		if !ok || rest == "" {
			continue
		}
		serial := rest
		if i := strings.LastIndexByte(rest, '_'); i >= 0 && kind != "virtio" {
			serial = rest[i+1:]
		}
		if serial == "" {
			continue
		}
		switch kind {
		case "ata", "nvme":
			preferred = append(preferred, serial)
		case "scsi", "virtio":
			fallback = append(fallback, serial)
		}
	}
	if len(preferred) == 0 {
		preferred = fallback
	}
	return joinSorted(preferred)
}

// boardPlaceholders are what firmware writes when it has no board serial.
var boardPlaceholders = []string{"", "none", "not specified", "not applicable", "default string", "to be filled by o.e.m.", "0"}

// fingerprintBoard is the board serial; only root may read it.
func fingerprintBoard(fsys fs.FS) string {
	b, err := fs.ReadFile(fsys, "sys/class/dmi/id/board_serial")
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if slices.Contains(boardPlaceholders, strings.ToLower(s)) {
		return ""
	}
	return s
}

// edxFlags are the /proc/cpuinfo names of the CPUID leaf 1 EDX feature
// bits, by bit ("" for reserved bits).
var edxFlags = [32]string{
	"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov",
	"pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe",
}

// fingerprintCPU is the processor id as Windows tools show it: on x86 the
// CPUID leaf 1 EDX and EAX words in hex ("BFEBFBFF00090672"), rebuilt from
// the first processor's flags, family, model and stepping; elsewhere the
// "Serial" line when there is one.
func fingerprintCPU(fsys fs.FS) string {
	f, err := fsys.Open("proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	// The first processor's block is enough; the machine-wide lines
	// (Serial on ARM boards) may come after every processor's.
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := fields[k]; !seen {
			fields[k] = strings.TrimSpace(v)
		}
	}
	family, errF := strconv.Atoi(fields["cpu family"])
	model, errM := strconv.Atoi(fields["model"])
	stepping, errS := strconv.Atoi(fields["stepping"])
	if fields["vendor_id"] == "" || errF != nil || errM != nil || errS != nil || family < 0 || model < 0 || stepping < 0 {
		return fields["Serial"]
	}
	// EAX: stepping, model, family, extended model, extended family, as
	// the kernel derived family and model from them.
	baseFamily, extFamily := family, 0
	if family >= 0xf {
		baseFamily, extFamily = 0xf, family-0xf
	}
	eax := uint32(stepping&0xf) | uint32(model&0xf)<<4 | uint32(baseFamily&0xf)<<8 |
		uint32(model>>4&0xf)<<16 | uint32(extFamily&0xff)<<20
	var edx uint32
	flags := strings.Fields(fields["flags"])
	for bit, name := range edxFlags {
		if name != "" && slices.Contains(flags, name) {
			edx |= 1 << bit
		}
	}
	return fmt.Sprintf("%08X%08X", edx, eax)
}

// joinSorted joins the distinct values, sorted, with commas.
func joinSorted(values []string) string {
	slices.Sort(values)
	return strings.Join(slices.Compact(values), ",")
}
