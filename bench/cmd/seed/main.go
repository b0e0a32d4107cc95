// Command seed creates and removes the TrainJobs that the benchmark runs on.
//
//	seed create -count N [-from I] -manifest FILE   create TrainJobs I .. I+N-1
//	seed clear                                     delete every TrainJob in the bench namespaces
//
// TrainJob i is named tj-NNNNNN and lives in namespace bench-MM (i modulo -namespaces). Even
// indexes are finished: their Complete condition (Failed for every fourth of them) became True
// at their creationTimestamp. Odd indexes are running. Each TrainJob is created with POST and
// then gets its status through the status subresource, as Trainer's controller writes it, from
// -workers goroutines at once. The manifest gets one line "namespace name finished|running" per
// TrainJob, which the harness compares with what a tool left behind.
//
// The finish time cannot lie further back: kube-apiserver sets creationTimestamp itself, and
// trainjob-gc keeps a TrainJob whose finish time is earlier than its creation, because such a
// time cannot be trusted. So the benchmark runs with a TTL of seconds, not hours.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"trainjob-gc/bench/internal/apiclient"
)

const namespacePrefix = "bench-"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: seed create|clear [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "create":
		err = runCreate(os.Args[2:])
	case "clear":
		err = runClear(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (expected create or clear)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// --- create ----------------------------------------------------------------------------------

type createOptions struct {
	connection apiclient.Options
	count      int
	from       int
	namespaces int
	workers    int
	manifest   string
}

func runCreate(args []string) error {
	var o createOptions
	fs := flag.NewFlagSet("seed create", flag.ExitOnError)
	o.connection.RegisterFlags(fs)
	fs.IntVar(&o.count, "count", 0, "number of TrainJobs to create")
	fs.IntVar(&o.from, "from", 0, "index of the first TrainJob, so a larger set can extend a smaller one")
	fs.IntVar(&o.namespaces, "namespaces", 8, "number of namespaces the TrainJobs are spread over")
	fs.IntVar(&o.workers, "workers", 48, "requests in flight at once")
	fs.StringVar(&o.manifest, "manifest", "", "file that gets one line per created TrainJob (appended to)")
	fs.Parse(args)
	if o.count <= 0 || o.from < 0 || o.namespaces <= 0 || o.workers <= 0 || o.manifest == "" {
		return errors.New("create needs -count > 0, -from >= 0, -namespaces > 0, -workers > 0 and -manifest")
	}

	client, err := apiclient.New(o.connection, o.workers)
	if err != nil {
		return err
	}
	started := time.Now()
	for n := 0; n < o.namespaces; n++ {
		if err := createNamespace(client, namespaceName(n)); err != nil {
			return err
		}
	}

	indexes := make(chan int)
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	var lastFinish latestTime
	var wg sync.WaitGroup
	for w := 0; w < o.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range indexes {
				if failed.Load() {
					continue
				}
				finishedAt, err := createTrainJob(client, i, o.namespaces)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
				}
				lastFinish.observe(finishedAt)
			}
		}()
	}
	for i := o.from; i < o.from+o.count; i++ {
		indexes <- i
	}
	close(indexes)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	elapsed := time.Since(started).Seconds()

	if err := appendManifest(o); err != nil {
		return err
	}
	summary, _ := json.Marshal(map[string]any{
		"created":       o.count,
		"seconds":       elapsed,
		"per_second":    float64(o.count) / elapsed,
		"last_finished": lastFinish.text,
	})
	fmt.Println(string(summary))
	return nil
}

func namespaceName(n int) string { return fmt.Sprintf("%s%02d", namespacePrefix, n) }

func trainJobName(i int) string { return fmt.Sprintf("tj-%06d", i) }

func isFinished(i int) bool { return i%2 == 0 }

func createNamespace(client *apiclient.Client, name string) error {
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": name},
	})
	code, data, err := client.Do("POST", "/api/v1/namespaces", body, "application/json")
	if err != nil {
		return err
	}
	if code != 201 && code != 409 {
		return apiclient.StatusError("POST", "/api/v1/namespaces", code, data)
	}
	return nil
}

// trainJob returns the object that is created: a spec such as a PyTorch fine-tuning job has,
// so that list pages are about as large as on a real cluster.
func trainJob(name, namespace string) map[string]any {
	return map[string]any{
		"apiVersion": "trainer.kubeflow.org/v1alpha1",
		"kind":       "TrainJob",
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespace,
			"labels": map[string]string{
				"team":                       "research",
				"trainer.kubeflow.org/model": "llama-3-8b",
			},
		},
		"spec": map[string]any{
			"runtimeRef": map[string]any{
				"apiGroup": "trainer.kubeflow.org",
				"kind":     "ClusterTrainingRuntime",
				"name":     "torch-distributed",
			},
			"trainer": map[string]any{
				"image":    "registry.example/research/llm-finetune:1.4.2",
				"command":  []string{"torchrun", "train.py"},
				"args":     []string{"--epochs", "3", "--learning-rate", "2e-5"},
				"numNodes": 2,
				"resourcesPerNode": map[string]any{
					"limits": map[string]string{"nvidia.com/gpu": "1", "memory": "64Gi"},
				},
			},
		},
	}
}

// status returns the status that Trainer's controller would have written: a finished TrainJob
// has a True Complete or Failed condition copied from its JobSet, a running one only has the
// counts of its jobs.
func status(i int, finishedAt string) map[string]any {
	if !isFinished(i) {
		return map[string]any{"jobsStatus": []map[string]any{
			{"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0},
		}}
	}
	condition := map[string]any{
		"type":               "Complete",
		"status":             "True",
		"reason":             "AllJobsCompleted",
		"message":            "jobset completed successfully",
		"lastTransitionTime": finishedAt,
	}
	jobs := map[string]any{"name": "node", "active": 0, "ready": 0, "succeeded": 2, "failed": 0, "suspended": 0}
	if i%8 == 0 {
		condition["type"] = "Failed"
		condition["reason"] = "FailedJobs"
		condition["message"] = "jobset failed: 1 job failed"
		jobs["succeeded"], jobs["failed"] = 1, 1
	}
	return map[string]any{
		"conditions": []map[string]any{condition},
		"jobsStatus": []map[string]any{jobs},
	}
}

// createTrainJob creates TrainJob i and writes its status. It returns the finish time of a
// finished TrainJob (its creationTimestamp) and "" for a running one.
func createTrainJob(client *apiclient.Client, i, namespaces int) (string, error) {
	name := trainJobName(i)
	namespace := namespaceName(i % namespaces)
	collection := apiclient.NamespacedPath(namespace)

	body, _ := json.Marshal(trainJob(name, namespace))
	created, err := sendWithRetries(client, "POST", collection, body, "application/json", 201)
	if err != nil {
		return "", err
	}
	var metadata struct {
		Metadata struct {
			CreationTimestamp string `json:"creationTimestamp"`
		} `json:"metadata"`
	}
	if created != nil {
		if err := json.Unmarshal(created, &metadata); err != nil {
			return "", fmt.Errorf("failed to decode the created TrainJob %s/%s: %w", namespace, name, err)
		}
	}
	finishedAt := metadata.Metadata.CreationTimestamp
	if finishedAt == "" {
		// A retried POST that found the object from the first attempt returns no object.
		finishedAt = time.Now().UTC().Format(time.RFC3339)
	}
	if !isFinished(i) {
		finishedAt = ""
	}

	patch, _ := json.Marshal(map[string]any{"status": status(i, finishedAt)})
	_, err = sendWithRetries(client, "PATCH", collection+"/"+name+"/status", patch,
		"application/merge-patch+json", 200)
	return finishedAt, err
}

// latestTime keeps the latest of the RFC 3339 times it observes. Times in UTC with whole
// seconds, as kube-apiserver writes them, compare correctly as strings.
type latestTime struct {
	mu   sync.Mutex
	text string
}

func (l *latestTime) observe(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if text > l.text {
		l.text = text
	}
}

// sendWithRetries sends a request until it returns the status code want and returns the
// response body. It retries connection errors, 429 (kube-apiserver sends it while a CRD's
// storage initializes) and 5xx. A 409 on a retried POST means that the first attempt did create
// the object; the body is then nil.
func sendWithRetries(client *apiclient.Client, method, path string, body []byte, contentType string, want int) ([]byte, error) {
	const attempts = 8
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		code, data, err := client.Do(method, path, body, contentType)
		switch {
		case err != nil:
			lastErr = err
		case code == want:
			return data, nil
		case code == 409 && method == "POST" && attempt > 0:
			return nil, nil
		case code == 429 || code >= 500:
			lastErr = apiclient.StatusError(method, path, code, data)
		default:
			return nil, apiclient.StatusError(method, path, code, data)
		}
	}
	return nil, fmt.Errorf("gave up after %d attempts: %w", attempts, lastErr)
}

func appendManifest(o createOptions) error {
	lines := make([]string, 0, o.count)
	for i := o.from; i < o.from+o.count; i++ {
		state := "running"
		if isFinished(i) {
			state = "finished"
		}
		lines = append(lines, namespaceName(i%o.namespaces)+" "+trainJobName(i)+" "+state)
	}
	sort.Strings(lines)
	file, err := os.OpenFile(o.manifest, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	writer := bufio.NewWriter(file)
	for _, line := range lines {
		writer.WriteString(line + "\n")
	}
	if err := writer.Flush(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// --- clear -----------------------------------------------------------------------------------

func runClear(args []string) error {
	var connection apiclient.Options
	fs := flag.NewFlagSet("seed clear", flag.ExitOnError)
	connection.RegisterFlags(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "time to wait until no TrainJob is left")
	fs.Parse(args)

	client, err := apiclient.New(connection, 16)
	if err != nil {
		return err
	}
	started := time.Now()
	namespaces, err := benchNamespaces(client)
	if err != nil {
		return err
	}
	deadline := started.Add(*timeout)
	for {
		left, err := countTrainJobs(client)
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d TrainJobs were still left %s after the first deletecollection", left, *timeout)
		}
		// One deletecollection per namespace, all at once, because kube-apiserver deletes the
		// items of one deletecollection one after another (--delete-collection-workers is 1 by
		// default). A request that times out on a large collection is sent again.
		var wg sync.WaitGroup
		errs := make([]error, len(namespaces))
		for n, namespace := range namespaces {
			wg.Add(1)
			go func(n int, namespace string) {
				defer wg.Done()
				path := apiclient.NamespacedPath(namespace)
				code, data, err := client.Do("DELETE", path, nil, "")
				if err == nil && code != 200 && code != 504 && code != 429 {
					err = apiclient.StatusError("DELETE", path, code, data)
				}
				errs[n] = err
			}(n, namespace)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	summary, _ := json.Marshal(map[string]any{"seconds": time.Since(started).Seconds()})
	fmt.Println(string(summary))
	return nil
}

func benchNamespaces(client *apiclient.Client) ([]string, error) {
	code, data, err := client.Do("GET", "/api/v1/namespaces", nil, "")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, apiclient.StatusError("GET", "/api/v1/namespaces", code, data)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("failed to decode the namespace list: %w", err)
	}
	var names []string
	for _, item := range list.Items {
		if strings.HasPrefix(item.Metadata.Name, namespacePrefix) {
			names = append(names, item.Metadata.Name)
		}
	}
	return names, nil
}

// countTrainJobs returns the number of TrainJobs in the cluster, from a list of one item and its
// remainingItemCount, so it stays cheap with 50,000 TrainJobs.
func countTrainJobs(client *apiclient.Client) (int, error) {
	path := apiclient.TrainJobsPath + "?limit=1"
	code, data, err := client.Do("GET", path, nil, "")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, apiclient.StatusError("GET", path, code, data)
	}
	var list struct {
		Metadata struct {
			RemainingItemCount *int `json:"remainingItemCount"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return 0, fmt.Errorf("failed to decode the TrainJob list: %w", err)
	}
	count := len(list.Items)
	if list.Metadata.RemainingItemCount != nil {
		count += *list.Metadata.RemainingItemCount
	}
	return count, nil
}
