package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newAdmin(o *options) (*kadm.Client, error) {
	cl, err := kgo.NewClient(franzBase(o)...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// ensureTopic creates topic with the given partition count unless it exists.
func ensureTopic(ctx context.Context, o *options, topic string, partitions int) error {
	adm, err := newAdmin(o)
	if err != nil {
		return err
	}
	defer adm.Close()
	resp, err := adm.CreateTopic(ctx, int32(partitions), int16(o.replication), nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return resp.Err
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	if n := len(details[topic].Partitions); n != partitions {
		logf("topic %s exists with %d partitions, not %d", topic, n, partitions)
	}
	return nil
}

func runAdmin(ctx context.Context, o *options) error {
	adm, err := newAdmin(o)
	if err != nil {
		return err
	}
	defer adm.Close()
	switch o.sub {
	case "create-topic":
		return adminCreateTopic(ctx, adm, o)
	case "delete-topic":
		resp, err := adm.DeleteTopic(ctx, o.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return err
		}
		emit(map[string]any{"deleted": true, "topic": o.topic})
	case "describe-topic":
		details, err := adm.ListTopics(ctx, o.topic)
		if err != nil {
			return err
		}
		d := details[o.topic]
		if d.Err != nil {
			return d.Err
		}
		rf := 0
		for _, p := range d.Partitions {
			rf = max(rf, len(p.Replicas))
		}
		emit(map[string]any{"topic": o.topic, "partitions": len(d.Partitions), "replication_factor": rf})
	case "describe-configs":
		rcs, err := adm.DescribeTopicConfigs(ctx, o.topic)
		if err != nil {
			return err
		}
		rc, err := rcs.On(o.topic, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return err
		}
		configs := map[string]*string{}
		sources := map[string]string{}
		for _, c := range rc.Configs {
			configs[c.Key] = c.Value
			sources[c.Key] = c.Source.String()
		}
		emit(map[string]any{"configs": configs, "sources": sources})
	case "list-acls":
		b := kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
			Operations().ResourcePatternType(kadm.ACLPatternAny)
		results, err := adm.DescribeACLs(ctx, b)
		if err != nil {
			return err
		}
		acls := []map[string]any{}
		for _, r := range results {
			if r.Err != nil {
				return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
			for _, d := range r.Described {
				acls = append(acls, map[string]any{
					"principal": d.Principal, "host": d.Host,
					"resource_type": d.Type.String(), "resource_name": d.Name,
					"pattern_type": d.Pattern.String(), "operation": d.Operation.String(),
					"permission": d.Permission.String(),
				})
			}
		}
		sort.Slice(acls, func(i, j int) bool { return fmt.Sprint(acls[i]) < fmt.Sprint(acls[j]) })
		emit(map[string]any{"acls": acls})
	case "describe-scram":
		users, err := adm.DescribeUserSCRAMs(ctx)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, u := range users.Sorted() {
			if u.Err != nil {
				return fmt.Errorf("user %s: %w", u.User, u.Err)
			}
			mechs := []string{}
			iters := []int32{}
			sort.Slice(u.CredInfos, func(i, j int) bool {
				return u.CredInfos[i].Mechanism.String() < u.CredInfos[j].Mechanism.String()
			})
			for _, c := range u.CredInfos {
				mechs = append(mechs, c.Mechanism.String())
				iters = append(iters, c.Iterations)
			}
			out = append(out, map[string]any{"user": u.User, "mechanisms": mechs, "iterations": iters})
		}
		emit(map[string]any{"users": out})
	case "describe-quotas":
		qs, err := adm.DescribeClientQuotas(ctx, false, nil)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, q := range qs {
			entity := []map[string]any{}
			for _, e := range q.Entity {
				entity = append(entity, map[string]any{"type": e.Type, "name": e.Name})
			}
			values := map[string]float64{}
			for _, v := range q.Values {
				values[v.Key] = v.Value
			}
			out = append(out, map[string]any{"entity": entity, "values": values})
		}
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]["entity"]) < fmt.Sprint(out[j]["entity"]) })
		emit(map[string]any{"quotas": out})
	case "group-offsets":
		if o.group == "" {
			return errUsage("group-offsets needs --group")
		}
		var resps kadm.OffsetResponses
		// Retriable errors (e.g. no coordinator yet on a fresh cluster) are
		// retried for up to 10 seconds.
		for try := 0; ; try++ {
			resps, err = adm.FetchOffsets(ctx, o.group)
			if err == nil {
				err = resps.Error()
			}
			if err == nil || !kerr.IsRetriable(err) || try == 40 {
				break
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(250 * time.Millisecond):
			}
		}
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, r := range resps.Sorted() {
			if o.topic != "" && r.Topic != o.topic {
				continue
			}
			out = append(out, map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.At})
		}
		emit(map[string]any{"offsets": out})
	default:
		return errUsage("unknown admin subcommand " + o.sub)
	}
	return nil
}

func adminCreateTopic(ctx context.Context, adm *kadm.Client, o *options) error {
	if o.partitions <= 0 {
		return errUsage("create-topic needs --partitions > 0")
	}
	configs := map[string]*string{}
	for _, kv := range o.configs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return errUsage("--config wants k=v, got " + kv)
		}
		configs[k] = &v
	}
	resp, err := adm.CreateTopic(ctx, int32(o.partitions), int16(o.replication), configs, o.topic)
	if err == nil {
		err = resp.Err
	}
	existed := false
	if errors.Is(err, kerr.TopicAlreadyExists) && o.ifNotExists {
		err, existed = nil, true
	}
	if err != nil {
		if resp.ErrMessage != "" {
			return fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return err
	}
	emit(map[string]any{"created": !existed, "topic": o.topic, "partitions": o.partitions})
	return nil
}
