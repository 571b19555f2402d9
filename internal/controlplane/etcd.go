package controlplane

import (
	"context"
	"fmt"
	"time"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/etcd"
)

// Etcd is the datastore: the embedded member, which is restarted if it
// stops, or a check that the external cluster answers.
func (c *Cluster) Etcd() component.Component {
	if d := c.cfg.Datastore; len(d.Endpoints) > 0 {
		return component.Component{Name: "etcd", Core: true, Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
			if err := d.Check(ctx); err != nil {
				return "", nil, err
			}
			return "external, " + d.Endpoints[0], nil, nil
		}}
	}
	m := &etcd.Member{Dir: c.Dir.Etcd(), Socket: c.Dir.EtcdSocket(), LogFile: c.Dir.EtcdLog()}
	c.etcdServers = []string{m.ClientURL()}
	return component.Component{Name: "etcd", Core: true, StopTimeout: 3 * time.Second, Start: func(ctx context.Context, progress component.Progress) (string, func() error, error) {
		wait, err := m.Start(ctx, progress)
		detail := "embedded, " + m.Socket
		if m.Reclaimed > 0 {
			detail += fmt.Sprintf(" (defragmented: %d MB freed)", m.Reclaimed>>20)
		}
		return detail, wait, err
	}}
}
