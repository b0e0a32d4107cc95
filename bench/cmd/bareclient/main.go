// Command bareclient does trainjob-gc's job with nothing but net/http and encoding/json. The
// benchmark uses it as the measure of what the API server allows. It lists every TrainJob in
// pages and deletes each one whose Complete or Failed condition has been True for longer than
// -ttl.
//
// It sends the same requests as trainjob-gc: a paged cluster-wide list, then one DELETE per
// expired TrainJob with propagationPolicy Background and preconditions on uid and
// resourceVersion, -concurrency of them in flight over kept-alive connections. Deletions start
// while later pages are still being listed. It has no retries, no rate limit and no report, and
// it exits non-zero when any request fails.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"trainjob-gc/bench/internal/apiclient"
)

type condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

type trainJob struct {
	Metadata struct {
		Name              string  `json:"name"`
		Namespace         string  `json:"namespace"`
		UID               string  `json:"uid"`
		ResourceVersion   string  `json:"resourceVersion"`
		DeletionTimestamp *string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		Conditions []condition `json:"conditions"`
	} `json:"status"`
}

type trainJobList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []trainJob `json:"items"`
}

// finishedAt returns the lastTransitionTime of the True Complete or Failed condition.
func finishedAt(job *trainJob) (time.Time, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == "Complete" || c.Type == "Failed") && c.Status == "True" {
			return c.LastTransitionTime, true
		}
	}
	return time.Time{}, false
}

func main() {
	var connection apiclient.Options
	fs := flag.NewFlagSet("bareclient", flag.ExitOnError)
	connection.RegisterFlags(fs)
	concurrency := fs.Int("concurrency", 16, "DELETE requests in flight at once")
	pageSize := fs.Int("page-size", 500, "limit of each list request")
	ttl := fs.Duration("ttl", time.Hour, "time after the finish after which a TrainJob is deleted")
	fs.Parse(os.Args[1:])

	client, err := apiclient.New(connection, *concurrency+1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareclient:", err)
		os.Exit(2)
	}
	started := time.Now()
	now := started

	var deleted, failed atomic.Int64
	expired := make(chan *trainJob, *pageSize)
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range expired {
				if err := deleteTrainJob(client, job); err != nil {
					fmt.Fprintln(os.Stderr, "bareclient:", err)
					failed.Add(1)
				} else {
					deleted.Add(1)
				}
			}
		}()
	}

	listed, pages, listErr := listExpired(client, *pageSize, *ttl, now, expired)
	close(expired)
	wg.Wait()

	summary, _ := json.Marshal(map[string]any{
		"listed":  listed,
		"pages":   pages,
		"deleted": deleted.Load(),
		"failed":  failed.Load(),
		"seconds": time.Since(started).Seconds(),
	})
	fmt.Println(string(summary))
	if listErr != nil {
		fmt.Fprintln(os.Stderr, "bareclient:", listErr)
		os.Exit(1)
	}
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// listExpired lists all TrainJobs page by page and sends each expired one to the channel. It
// returns the number of TrainJobs listed and of pages read.
func listExpired(client *apiclient.Client, pageSize int, ttl time.Duration, now time.Time, expired chan<- *trainJob) (int, int, error) {
	listed, pages := 0, 0
	continueToken := ""
	for {
		query := url.Values{"limit": {fmt.Sprint(pageSize)}}
		if continueToken != "" {
			query.Set("continue", continueToken)
		}
		path := apiclient.TrainJobsPath + "?" + query.Encode()
		code, data, err := client.Do("GET", path, nil, "")
		if err != nil {
			return listed, pages, err
		}
		if code != 200 {
			return listed, pages, apiclient.StatusError("GET", path, code, data)
		}
		var page trainJobList
		if err := json.Unmarshal(data, &page); err != nil {
			return listed, pages, fmt.Errorf("failed to decode a TrainJob list page: %w", err)
		}
		pages++
		for i := range page.Items {
			job := &page.Items[i]
			listed++
			if job.Metadata.DeletionTimestamp != nil {
				continue
			}
			finished, ok := finishedAt(job)
			if ok && !finished.IsZero() && !now.Before(finished.Add(ttl)) {
				expired <- job
			}
		}
		continueToken = page.Metadata.Continue
		if continueToken == "" {
			return listed, pages, nil
		}
	}
}

func deleteTrainJob(client *apiclient.Client, job *trainJob) error {
	body, _ := json.Marshal(map[string]any{
		"apiVersion":        "v1",
		"kind":              "DeleteOptions",
		"propagationPolicy": "Background",
		"preconditions": map[string]string{
			"uid":             job.Metadata.UID,
			"resourceVersion": job.Metadata.ResourceVersion,
		},
	})
	path := apiclient.NamespacedPath(job.Metadata.Namespace) + "/" + job.Metadata.Name
	code, data, err := client.Do("DELETE", path, body, "application/json")
	if err != nil {
		return err
	}
	if code != 200 && code != 202 {
		return apiclient.StatusError("DELETE", path, code, data)
	}
	return nil
}
