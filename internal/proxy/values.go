package proxy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// ParseByteSize parses a size in bytes with an optional binary suffix:
// "1048576", "512K", "64KiB", "10M", "1G", "1T" (K = 1024; "B", "iB" and
// lower case are accepted). Negative values, fractions and overflow are
// errors.
func ParseByteSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	num := s
	mult := int64(1)
	upper := strings.ToUpper(s)
	for _, suf := range []struct {
		text string
		mult int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	} {
		if strings.HasSuffix(upper, suf.text) {
			num, mult = s[:len(s)-len(suf.text)], suf.mult
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("size %q has no number", s)
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, fmt.Errorf("size %q: want digits with an optional K, M, G or T suffix", s)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q overflows", s)
	}
	return n * mult, nil
}

// FormatByteSize renders n with the largest exact binary suffix ("64K").
func FormatByteSize(n int64) string {
	for _, u := range []struct {
		suf  string
		mult int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suf
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseCIDRList parses a comma-separated list of CIDR prefixes or bare IP
// addresses (a bare address is a /32 or /128). Spaces around entries and
// empty entries are ignored; prefixes are returned masked, IPv4-mapped IPv6
// addresses unmapped.
func ParseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix: %w", part, err)
			}
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q: zones are not allowed", part)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix: %w", part, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%q: zones are not allowed", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// byteSizeValue is a flag.Value for sizes with suffixes.
type byteSizeValue struct{ p *int64 }

func (v byteSizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	return FormatByteSize(*v.p)
}

func (v byteSizeValue) Set(s string) error {
	n, err := ParseByteSize(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// intSizeValue is byteSizeValue for int fields.
type intSizeValue struct{ p *int }

func (v intSizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	return FormatByteSize(int64(*v.p))
}

func (v intSizeValue) Set(s string) error {
	n, err := ParseByteSize(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("size %q is too large", s)
	}
	*v.p = int(n)
	return nil
}

// listValue is a repeatable, comma-separated string list flag. The first Set
// replaces the default; later ones append.
type listValue struct {
	p   *[]string
	set bool
}

func (v *listValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v *listValue) Set(s string) error {
	if !v.set {
		*v.p = nil
		v.set = true
	}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v.p = append(*v.p, part)
		}
	}
	return nil
}

// prefixListValue is a repeatable, comma-separated CIDR list flag.
type prefixListValue struct {
	p   *[]netip.Prefix
	set bool
}

func (v *prefixListValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, p := range *v.p {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (v *prefixListValue) Set(s string) error {
	ps, err := ParseCIDRList(s)
	if err != nil {
		return err
	}
	if !v.set {
		*v.p = nil
		v.set = true
	}
	*v.p = append(*v.p, ps...)
	return nil
}
