package node

import (
	"fmt"
	"math/big"
	"net"
	"sync"
)

// ipam hands out pod addresses from a node's podCIDR: the network address
// and the first address (the gateway, by CNI convention) are skipped, as is
// the broadcast address of IPv4 ranges.
type ipam struct {
	cidr  string
	base  *big.Int
	size  int64
	ipv6  bool
	mu    sync.Mutex
	used  map[int64]string // offset -> owner
	owner map[string]int64 // owner -> offset
	next  int64
}

func newIPAM(cidr string) (*ipam, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	ones, bits := n.Mask.Size()
	host := bits - ones
	if host > 20 {
		host = 20 // a million addresses is plenty for one node
	}
	size := int64(1) << host
	ip := n.IP.To4()
	v6 := ip == nil
	if v6 {
		ip = n.IP.To16()
	}
	return &ipam{cidr: cidr, base: new(big.Int).SetBytes(ip), size: size, ipv6: v6, used: map[int64]string{}, owner: map[string]int64{}, next: 2}, nil
}

func (p *ipam) ipAt(off int64) string {
	v := new(big.Int).Add(p.base, big.NewInt(off))
	b := v.Bytes()
	n := 4
	if p.ipv6 {
		n = 16
	}
	buf := make([]byte, n)
	copy(buf[n-len(b):], b)
	return net.IP(buf).String()
}

func (p *ipam) offset(ip string) (int64, bool) {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return 0, false
	}
	if !p.ipv6 {
		parsed = parsed.To4()
		if parsed == nil {
			return 0, false
		}
	} else {
		parsed = parsed.To16()
	}
	off := new(big.Int).Sub(new(big.Int).SetBytes(parsed), p.base)
	if off.Sign() < 0 || !off.IsInt64() || off.Int64() >= p.size {
		return 0, false
	}
	return off.Int64(), true
}

func (p *ipam) usable(off int64) bool {
	if off < 2 {
		return false
	}
	return p.ipv6 || off < p.size-1
}

// allocate returns owner's address: the one it has, else previous if that
// is free and in range, else the next free one.
func (p *ipam) allocate(owner, previous string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off, ok := p.owner[owner]; ok {
		return p.ipAt(off), nil
	}
	if previous != "" {
		if off, ok := p.offset(previous); ok && p.usable(off) {
			if _, taken := p.used[off]; !taken {
				p.used[off], p.owner[owner] = owner, off
				return previous, nil
			}
		}
	}
	for i := int64(0); i < p.size; i++ {
		off := (p.next + i) % p.size
		if !p.usable(off) {
			continue
		}
		if _, taken := p.used[off]; !taken {
			p.used[off], p.owner[owner] = owner, off
			p.next = off + 1
			return p.ipAt(off), nil
		}
	}
	return "", fmt.Errorf("podCIDR %s is exhausted", p.cidr)
}

func (p *ipam) release(owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off, ok := p.owner[owner]; ok {
		delete(p.owner, owner)
		delete(p.used, off)
	}
}
