// Executions of labs: rows in an SQLite database (WAL) and one folder each,
// under a lab home (GPULAB_HOME, default ~/.local/share/gpulab):
//   HOME/executions.db
//   HOME/executions/ID/{spec.yaml, log, inputs/, mounts/, outputs/}
//   HOME/cache/       content-addressed input cache (input_fetch.h)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/core/options.h"

namespace SQLite {
class Database;
}

namespace gpulab::lab {

// Schema version of executions.db (table `meta`, key `schema_version`).
constexpr int kExecutionSchemaVersion = 1;

enum class ExecutionState { kPending, kFetching, kRunning, kFinished, kFailed, kStopped };

const char* state_name(ExecutionState state);  // "pending", "fetching", ...
// Throws Error(kInvalidArgument) listing the valid names.
ExecutionState parse_state(const std::string& name);
// finished, failed and stopped never change again.
bool is_terminal(ExecutionState state);

struct Execution {
  std::string id;    // 12 hex digits: 8 of the creation second, 4 random; sorts by time
  std::string name;  // the spec's name
  ExecutionState state = ExecutionState::kPending;
  double created_at = 0;         // Unix seconds
  double started_at = 0;         // when the command started; 0 = not yet
  double finished_at = 0;        // when it reached a terminal state; 0 = not yet
  std::optional<int> exit_code;  // the command's, when it exited (128 + N for signal N)
  std::string runner = "local";
  std::string host;            // where `pid` lives
  int64_t pid = 0;             // the process answerable now: submitter, then supervisor
  int64_t child_pid = 0;       // the command's process (and process group) id
  std::string job_id;          // a batch system's job id (slurm); "" for local
  std::string hardware;        // "cpu" or "gpu:N"
  std::string spec_hash;       // lab_spec_hash of the stored spec
  std::string gpulab_version;  // of the gpulab that submitted it
  nlohmann::json input_digests = nlohmann::json::object();  // name -> "sha256:…"
  std::string message;  // why it failed or stopped; "" otherwise
  bool stop_requested = false;

  nlohmann::json to_json() const;
};

struct ExecutionFilter {
  GPULAB_ARG(std::string, state) = "";  // a state name; "" = any
  GPULAB_ARG(std::string, name) = "";   // exact spec name; "" = any
  GPULAB_ARG(int, limit) = 100;         // rows per page (1..1000)
  GPULAB_ARG(int, offset) = 0;          // rows skipped, newest first
};

// One connection to HOME/executions.db. Not thread-safe and never to be used
// across fork(): give each thread or process its own store. Every write is a
// BEGIN IMMEDIATE transaction, so concurrent writers (threads or processes)
// wait for each other (busy timeout 30 s) instead of failing.
class ExecutionStore {
 public:
  // Opens (creating) HOME/executions.db and HOME/executions/. Throws
  // Error(kIo) naming the path, Error(kCorruptData) for a newer schema.
  explicit ExecutionStore(std::string home);
  ~ExecutionStore();
  ExecutionStore(const ExecutionStore&) = delete;
  ExecutionStore& operator=(const ExecutionStore&) = delete;

  // Inserts `e` in state pending with a new unique id and created_at = now,
  // creates its folder with inputs/, mounts/, outputs/; returns the row.
  Execution create(Execution e);
  std::optional<Execution> find(const std::string& id);
  // Throws Error(kNotFound) "no execution 'ID' in HOME (see gpulab lab list)".
  Execution get(const std::string& id);
  // Newest first.
  std::vector<Execution> list(const ExecutionFilter& filter = {});
  int64_t count(const ExecutionFilter& filter = {});

  // Writes every mutable column of `e` (state, times, exit code, pids, …).
  void update(const Execution& e);
  // Moves `id` to `state` unless it is already terminal; sets finished_at
  // for terminal states, `message` when not empty. Returns false when the
  // row was already terminal (nothing changed).
  bool transition(const std::string& id, ExecutionState state, const std::string& message = "",
                  std::optional<int> exit_code = std::nullopt);
  void set_stop_requested(const std::string& id);
  // Records the process answerable for a live execution (see Execution::pid)
  // unless the row is terminal.
  void set_pid(const std::string& id, int64_t pid);
  // Records the batch system's job id of `id` (Execution::job_id).
  void set_job_id(const std::string& id, const std::string& job_id);
  // Deletes the row and its folder.
  void remove(const std::string& id);

  const std::string& home() const { return home_; }
  std::string dir(const std::string& id) const;  // HOME/executions/ID

 private:
  std::string home_;
  std::unique_ptr<SQLite::Database> db_;
};

// GPULAB_HOME, else $XDG_DATA_HOME/gpulab, else ~/.local/share/gpulab.
std::string lab_home_from_environment();
// This machine's host name.
std::string host_name();
double unix_now();

}  // namespace gpulab::lab
