// Executions in SQLite through SQLiteCpp: WAL, synchronous=NORMAL, a busy
// timeout and BEGIN IMMEDIATE for every write (serving-stack notes: deferred
// transactions that read then write fail with "database is locked").
#include "gpulab/lab/execution_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "gpulab/core/error.h"

namespace gpulab::lab {
namespace {
namespace fs = std::filesystem;

constexpr const char* kColumns =
    "id, name, state, created_at, started_at, finished_at, exit_code, runner, host, pid, "
    "child_pid, job_id, hardware, spec_hash, gpulab_version, input_digests, message, "
    "stop_requested";

const char* const kStateNames[] = {"pending",  "fetching", "running",
                                   "finished", "failed",   "stopped"};

Execution row_to_execution(SQLite::Statement& q) {
  Execution e;
  e.id = q.getColumn(0).getString();
  e.name = q.getColumn(1).getString();
  e.state = parse_state(q.getColumn(2).getString());
  e.created_at = q.getColumn(3).getDouble();
  e.started_at = q.getColumn(4).getDouble();
  e.finished_at = q.getColumn(5).getDouble();
  if (!q.getColumn(6).isNull()) e.exit_code = q.getColumn(6).getInt();
  e.runner = q.getColumn(7).getString();
  e.host = q.getColumn(8).getString();
  e.pid = q.getColumn(9).getInt64();
  e.child_pid = q.getColumn(10).getInt64();
  e.job_id = q.getColumn(11).getString();
  e.hardware = q.getColumn(12).getString();
  e.spec_hash = q.getColumn(13).getString();
  e.gpulab_version = q.getColumn(14).getString();
  const std::string digests = q.getColumn(15).getString();
  e.input_digests = digests.empty() ? nlohmann::json::object() : nlohmann::json::parse(digests);
  e.message = q.getColumn(16).getString();
  e.stop_requested = q.getColumn(17).getInt() != 0;
  return e;
}

// 8 hex digits of the Unix second + 4 random ones: sortable by creation time.
std::string new_id() {
  static thread_local std::mt19937_64 rng(
      std::random_device{}() ^ (uint64_t(::getpid()) << 32) ^
      uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  return fmt::format("{:08x}{:04x}", static_cast<uint32_t>(unix_now()),
                     static_cast<uint32_t>(rng() & 0xffff));
}

void bind_filter(SQLite::Statement& q, const ExecutionFilter& f) {
  int i = 1;
  if (!f.state().empty()) q.bind(i++, state_name(parse_state(f.state())));
  if (!f.name().empty()) q.bind(i++, f.name());
}

std::string where(const ExecutionFilter& f) {
  std::string w;
  if (!f.state().empty()) w += " AND state = ?";
  if (!f.name().empty()) w += " AND name = ?";
  return w.empty() ? "" : " WHERE" + w.substr(4);
}

}  // namespace

const char* state_name(ExecutionState state) {
  return kStateNames[static_cast<int>(state)];
}

ExecutionState parse_state(const std::string& name) {
  for (int i = 0; i < 6; ++i) {
    if (name == kStateNames[i]) return static_cast<ExecutionState>(i);
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown execution state '{}': expected one of pending, fetching, running, "
              "finished, failed, stopped",
              name);
}

bool is_terminal(ExecutionState s) {
  return s == ExecutionState::kFinished || s == ExecutionState::kFailed ||
         s == ExecutionState::kStopped;
}

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string lab_home_from_environment() {
  if (const char* home = std::getenv("GPULAB_HOME"); home && *home) return home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/gpulab";
  }
  const char* home = std::getenv("HOME");
  GPULAB_CHECK(home && *home, ErrorKind::kInvalidArgument,
               "cannot place the lab home: set GPULAB_HOME (HOME is not set)");
  return std::string(home) + "/.local/share/gpulab";
}

nlohmann::json Execution::to_json() const {
  nlohmann::json j = {{"id", id},
                      {"name", name},
                      {"state", state_name(state)},
                      {"created_at", created_at},
                      {"started_at", started_at > 0 ? nlohmann::json(started_at) : nullptr},
                      {"finished_at", finished_at > 0 ? nlohmann::json(finished_at) : nullptr},
                      {"exit_code", exit_code ? nlohmann::json(*exit_code) : nullptr},
                      {"runner", runner},
                      {"host", host},
                      {"pid", pid},
                      {"child_pid", child_pid},
                      {"job_id", job_id},
                      {"hardware", hardware},
                      {"spec_hash", spec_hash},
                      {"gpulab_version", gpulab_version},
                      {"input_digests", input_digests},
                      {"message", message},
                      {"stop_requested", stop_requested}};
  return j;
}

ExecutionStore::ExecutionStore(std::string home) : home_(std::move(home)) {
  std::error_code ec;
  fs::create_directories(fs::path(home_) / "executions", ec);
  GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot create the lab home '{}': {} (set GPULAB_HOME)", home_,
               ec.message());
  const std::string path = home_ + "/executions.db";
  try {
    db_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db_->setBusyTimeout(30000);
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=NORMAL");
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    db_->exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    SQLite::Statement version(*db_, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (version.executeStep()) {
      const int found = std::stoi(version.getColumn(0).getString());
      GPULAB_CHECK(found <= kExecutionSchemaVersion, ErrorKind::kCorruptData,
                   "'{}' has schema version {}, newer than this gpulab's {}: use a newer gpulab "
                   "or another GPULAB_HOME",
                   path, found, kExecutionSchemaVersion);
    } else {
      db_->exec(
          fmt::format("INSERT INTO meta VALUES ('schema_version', '{}')", kExecutionSchemaVersion));
    }
    db_->exec(
        "CREATE TABLE IF NOT EXISTS executions ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,"
        " created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,"
        " finished_at REAL NOT NULL DEFAULT 0, exit_code INTEGER, runner TEXT NOT NULL,"
        " host TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0,"
        " child_pid INTEGER NOT NULL DEFAULT 0, job_id TEXT NOT NULL DEFAULT '',"
        " hardware TEXT NOT NULL DEFAULT '', spec_hash TEXT NOT NULL DEFAULT '',"
        " gpulab_version TEXT NOT NULL DEFAULT '', input_digests TEXT NOT NULL DEFAULT '{}',"
        " message TEXT NOT NULL DEFAULT '', stop_requested INTEGER NOT NULL DEFAULT 0)");
    db_->exec("CREATE INDEX IF NOT EXISTS executions_state ON executions (state, created_at)");
    db_->exec("CREATE INDEX IF NOT EXISTS executions_name ON executions (name, created_at)");
    tx.commit();
  } catch (const SQLite::Exception& e) {
    GPULAB_FAIL(ErrorKind::kIo, "cannot open the executions database '{}': {}", path, e.what());
  }
}

ExecutionStore::~ExecutionStore() = default;

std::string ExecutionStore::dir(const std::string& id) const {
  return home_ + "/executions/" + id;
}

Execution ExecutionStore::create(Execution e) {
  e.state = ExecutionState::kPending;
  e.created_at = unix_now();
  try {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    for (;;) {
      e.id = new_id();
      SQLite::Statement exists(*db_, "SELECT 1 FROM executions WHERE id = ?");
      exists.bind(1, e.id);
      if (!exists.executeStep() && !fs::exists(dir(e.id))) break;
    }
    SQLite::Statement q(*db_, fmt::format("INSERT INTO executions ({}) VALUES "
                                          "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                          kColumns));
    q.bind(1, e.id);
    q.bind(2, e.name);
    q.bind(3, state_name(e.state));
    q.bind(4, e.created_at);
    q.bind(5, e.started_at);
    q.bind(6, e.finished_at);
    if (e.exit_code) {
      q.bind(7, *e.exit_code);
    } else {
      q.bind(7);
    }
    q.bind(8, e.runner);
    q.bind(9, e.host);
    q.bind(10, e.pid);
    q.bind(11, e.child_pid);
    q.bind(12, e.job_id);
    q.bind(13, e.hardware);
    q.bind(14, e.spec_hash);
    q.bind(15, e.gpulab_version);
    q.bind(16, e.input_digests.dump());
    q.bind(17, e.message);
    q.bind(18, e.stop_requested ? 1 : 0);
    q.exec();
    for (const char* sub : {"inputs", "mounts", "outputs"}) {
      fs::create_directories(fs::path(dir(e.id)) / sub);
    }
    tx.commit();
  } catch (const SQLite::Exception& ex) {
    GPULAB_FAIL(ErrorKind::kIo, "cannot record an execution in '{}/executions.db': {}", home_,
                ex.what());
  } catch (const fs::filesystem_error& ex) {
    GPULAB_FAIL(ErrorKind::kIo, "cannot create the execution folder '{}': {}", dir(e.id),
                ex.what());
  }
  return e;
}

std::optional<Execution> ExecutionStore::find(const std::string& id) {
  SQLite::Statement q(*db_, fmt::format("SELECT {} FROM executions WHERE id = ?", kColumns));
  q.bind(1, id);
  if (!q.executeStep()) return std::nullopt;
  return row_to_execution(q);
}

Execution ExecutionStore::get(const std::string& id) {
  auto e = find(id);
  GPULAB_CHECK(e.has_value(), ErrorKind::kNotFound,
               "no execution '{}' in '{}' (see gpulab lab list)", id, home_);
  return *e;
}

std::vector<Execution> ExecutionStore::list(const ExecutionFilter& f) {
  GPULAB_CHECK(f.limit() >= 1 && f.limit() <= 1000 && f.offset() >= 0, ErrorKind::kInvalidArgument,
               "expected 1 <= `limit` <= 1000 and `offset` >= 0, found limit {} offset {}",
               f.limit(), f.offset());
  SQLite::Statement q(*db_, fmt::format("SELECT {} FROM executions{} ORDER BY created_at DESC, "
                                        "id DESC LIMIT {} OFFSET {}",
                                        kColumns, where(f), f.limit(), f.offset()));
  bind_filter(q, f);
  std::vector<Execution> out;
  while (q.executeStep()) out.push_back(row_to_execution(q));
  return out;
}

int64_t ExecutionStore::count(const ExecutionFilter& f) {
  SQLite::Statement q(*db_, "SELECT COUNT(*) FROM executions" + where(f));
  bind_filter(q, f);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

void ExecutionStore::update(const Execution& e) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_,
                      "UPDATE executions SET state=?, started_at=?, finished_at=?, exit_code=?, "
                      "host=?, pid=?, child_pid=?, job_id=?, input_digests=?, message=? "
                      "WHERE id=?");
  q.bind(1, state_name(e.state));
  q.bind(2, e.started_at);
  q.bind(3, e.finished_at);
  if (e.exit_code) {
    q.bind(4, *e.exit_code);
  } else {
    q.bind(4);
  }
  q.bind(5, e.host);
  q.bind(6, e.pid);
  q.bind(7, e.child_pid);
  q.bind(8, e.job_id);
  q.bind(9, e.input_digests.dump());
  q.bind(10, e.message);
  q.bind(11, e.id);
  q.exec();
  tx.commit();
}

bool ExecutionStore::transition(const std::string& id, ExecutionState state,
                                const std::string& message, std::optional<int> exit_code) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(
      *db_,
      "UPDATE executions SET state=?, finished_at=CASE WHEN ? THEN ? ELSE finished_at END,"
      " started_at=CASE WHEN ? = 'running' THEN ? ELSE started_at END,"
      " message=CASE WHEN ? = '' THEN message ELSE ? END,"
      " exit_code=CASE WHEN ? THEN ? ELSE exit_code END"
      " WHERE id=? AND state NOT IN ('finished', 'failed', 'stopped')");
  const double now = unix_now();
  q.bind(1, state_name(state));
  q.bind(2, is_terminal(state) ? 1 : 0);
  q.bind(3, now);
  q.bind(4, state_name(state));
  q.bind(5, now);
  q.bind(6, message);
  q.bind(7, message);
  q.bind(8, exit_code ? 1 : 0);
  q.bind(9, exit_code.value_or(0));
  q.bind(10, id);
  const int changed = q.exec();
  tx.commit();
  return changed > 0;
}

void ExecutionStore::set_stop_requested(const std::string& id) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_, "UPDATE executions SET stop_requested=1 WHERE id=?");
  q.bind(1, id);
  q.exec();
  tx.commit();
}

void ExecutionStore::set_pid(const std::string& id, int64_t pid) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_,
                      "UPDATE executions SET pid=? WHERE id=? AND state NOT IN ('finished', "
                      "'failed', 'stopped')");
  q.bind(1, pid);
  q.bind(2, id);
  q.exec();
  tx.commit();
}

void ExecutionStore::set_job_id(const std::string& id, const std::string& job_id) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_, "UPDATE executions SET job_id=? WHERE id=?");
  q.bind(1, job_id);
  q.bind(2, id);
  q.exec();
  tx.commit();
}

void ExecutionStore::remove(const std::string& id) {
  {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(*db_, "DELETE FROM executions WHERE id=?");
    q.bind(1, id);
    q.exec();
    tx.commit();
  }
  std::error_code ec;
  fs::remove_all(dir(id), ec);
  GPULAB_CHECK(!ec, ErrorKind::kIo, "removed execution '{}' but not its folder '{}': {}", id,
               dir(id), ec.message());
}

}  // namespace gpulab::lab
