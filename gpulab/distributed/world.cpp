// World::from_environment: torchrun, Slurm and Open MPI variables.
#include "gpulab/distributed/world.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "gpulab/core/error.h"

extern char** environ;

namespace gpulab::distributed {
namespace {

using Vars = std::map<std::string, std::string>;

const std::string* find(const Vars& vars, const std::string& name) {
  auto it = vars.find(name);
  return it == vars.end() || it->second.empty() ? nullptr : &it->second;
}

int int_var(const Vars& vars, const std::string& name, int fallback) {
  const std::string* text = find(vars, name);
  if (!text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text->c_str(), &end, 10);
  GPULAB_CHECK(end != text->c_str() && *end == '\0' && value >= 0 && value < (1L << 30),
               ErrorKind::kInvalidArgument,
               "environment variable {}='{}' is not a non-negative integer", name, *text);
  return static_cast<int>(value);
}

// The srun step this process is a task of, or -1 outside a step: an sbatch
// script has the job's variables (SLURM_PROCID 0 of SLURM_NTASKS) but no
// ranks were launched, and Slurm's special steps (batch, extern, interactive)
// have ids near 2^32.
long slurm_step(const Vars& vars) {
  const std::string* text = find(vars, "SLURM_STEP_ID");
  if (!text) text = find(vars, "SLURM_STEPID");
  if (!text) return -1;
  char* end = nullptr;
  const long long step = std::strtoll(text->c_str(), &end, 10);
  if (end == text->c_str() || *end != '\0' || step < 0 || step >= 0xFFFFFFF0LL) return -1;
  return static_cast<long>(step);
}

// Slurm gives no port: derive one from the job and step ids so concurrent
// jobs, and concurrent steps of one job, on a node do not collide.
int slurm_port(const Vars& vars, long step) {
  const long job = int_var(vars, "SLURM_JOB_ID", 0);
  return static_cast<int>(20000 + (job + 1009 * step) % 10000);
}

// Open MPI's job id: OMPI_MCA_ess_base_jobid (Open MPI 4), the older
// OMPI_MCA_orte_ess_jobid, or PMIx's namespace (Open MPI 5), else "".
std::string mpi_job_id(const Vars& vars) {
  for (const char* name :
       {"OMPI_MCA_ess_base_jobid", "OMPI_MCA_orte_ess_jobid", "PMIX_NAMESPACE"}) {
    if (const std::string* id = find(vars, name)) return *id;
  }
  return {};
}

// Open MPI gives no port either: one from the job id (FNV-1a, the same on
// every rank and build), in Slurm's range, so two mpirun jobs on a node meet
// on different ports.
int mpi_port(const std::string& job_id) {
  if (job_id.empty()) return 29500;
  uint64_t hash = 1469598103934665603ull;
  for (const char c : job_id) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return static_cast<int>(20000 + hash % 10000);
}

// A launcher sets its variables together: one without its partner is a
// broken environment, not a single process.
void check_pair(const Vars& vars, const std::string& a, const std::string& b) {
  for (const auto& [have, lack] : {std::pair(a, b), std::pair(b, a)}) {
    GPULAB_CHECK(!find(vars, have) || find(vars, lack), ErrorKind::kInvalidArgument,
                 "environment variable {}={} is set but {} is not: set both (a launcher sets "
                 "them together), or unset {} to train as one process",
                 have, *find(vars, have), lack, have);
  }
}

}  // namespace

bool is_loopback_address(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string first_slurm_host(const std::string& nodelist) {
  // Hosts are separated by commas outside brackets; a bracket holds ranges.
  std::string host;
  size_t i = 0;
  while (i < nodelist.size() && nodelist[i] != ',' && nodelist[i] != '[') host += nodelist[i++];
  if (i < nodelist.size() && nodelist[i] == '[') {
    ++i;
    std::string first;
    while (i < nodelist.size() && std::isdigit(static_cast<unsigned char>(nodelist[i])))
      first += nodelist[i++];
    host += first;
  }
  GPULAB_CHECK(!host.empty(), ErrorKind::kInvalidArgument,
               "cannot read a host from the Slurm node list '{}'", nodelist);
  return host;
}

World World::from_variables(const Vars& vars) {
  World w;
  check_pair(vars, "RANK", "WORLD_SIZE");
  check_pair(vars, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE");
  if (slurm_step(vars) >= 0) check_pair(vars, "SLURM_PROCID", "SLURM_NTASKS");
  if (find(vars, "RANK") && find(vars, "WORLD_SIZE")) {
    w.launcher = "torchrun";
    w.rank = int_var(vars, "RANK", 0);
    w.size = int_var(vars, "WORLD_SIZE", 1);
    w.local_rank = int_var(vars, "LOCAL_RANK", w.rank);
    w.local_size = int_var(vars, "LOCAL_WORLD_SIZE", w.size);
    if (const std::string* id = find(vars, "TORCHELASTIC_RUN_ID")) {
      w.job_id = *id;
    } else if (const std::string* id = find(vars, "GPULAB_JOB_ID")) {
      w.job_id = *id;
    }
  } else if (find(vars, "SLURM_PROCID") && find(vars, "SLURM_NTASKS") && slurm_step(vars) >= 0) {
    w.launcher = "slurm";
    w.rank = int_var(vars, "SLURM_PROCID", 0);
    w.size = int_var(vars, "SLURM_NTASKS", 1);
    w.local_rank = int_var(vars, "SLURM_LOCALID", 0);
    w.nodes = int_var(vars, "SLURM_NNODES", int_var(vars, "SLURM_JOB_NUM_NODES", 1));
    w.local_size = w.size / std::max(1, w.nodes);
    if (const std::string* tasks = find(vars, "SLURM_STEP_TASKS_PER_NODE")) {
      w.local_size = std::atoi(tasks->c_str());
    }
    const std::string* nodes = find(vars, "SLURM_STEP_NODELIST");
    if (!nodes) nodes = find(vars, "SLURM_JOB_NODELIST");
    if (!nodes) nodes = find(vars, "SLURM_NODELIST");
    if (nodes) w.master_addr = first_slurm_host(*nodes);
    w.master_port = slurm_port(vars, slurm_step(vars));
    w.job_id = fmt::format("{}.{}", find(vars, "SLURM_JOB_ID") ? *find(vars, "SLURM_JOB_ID") : "",
                           slurm_step(vars));
  } else if (find(vars, "OMPI_COMM_WORLD_RANK") && find(vars, "OMPI_COMM_WORLD_SIZE")) {
    w.launcher = "mpi";
    w.rank = int_var(vars, "OMPI_COMM_WORLD_RANK", 0);
    w.size = int_var(vars, "OMPI_COMM_WORLD_SIZE", 1);
    w.local_rank = int_var(vars, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    w.local_size = int_var(vars, "OMPI_COMM_WORLD_LOCAL_SIZE", w.size);
    w.job_id = mpi_job_id(vars);
    w.master_port = mpi_port(w.job_id);
    // Open MPI names no master; on one node it is this machine.
    GPULAB_CHECK(w.local_size == w.size || find(vars, "MASTER_ADDR"), ErrorKind::kInvalidArgument,
                 "mpirun over several nodes: pass the first node's address with "
                 "'mpirun -x MASTER_ADDR=HOST' (Open MPI names no rendezvous host)");
  }
  if (const std::string* addr = find(vars, "MASTER_ADDR")) w.master_addr = *addr;
  w.master_port = int_var(vars, "MASTER_PORT", w.master_port);
  if (w.launcher != "slurm") {
    w.nodes = std::max(1, (w.size + std::max(1, w.local_size) - 1) / std::max(1, w.local_size));
  }
  GPULAB_CHECK(w.size >= 1 && w.rank < w.size, ErrorKind::kInvalidArgument,
               "{} launcher: rank {} is outside a world of size {}", w.launcher, w.rank, w.size);
  GPULAB_CHECK(w.local_rank < std::max(w.local_size, 1) || w.launcher == "slurm",
               ErrorKind::kInvalidArgument, "{} launcher: local rank {} but {} local ranks",
               w.launcher, w.local_rank, w.local_size);
  GPULAB_CHECK(w.master_port > 0 && w.master_port < 65536, ErrorKind::kInvalidArgument,
               "MASTER_PORT {} is not a TCP port", w.master_port);
  return w;
}

World World::from_environment() {
  Vars vars;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) vars[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return from_variables(vars);
}

std::string World::job_identity() const {
  return fmt::format("{} job {} of {} ranks", launcher, job_id.empty() ? "(no id)" : job_id, size);
}

std::string describe_world(const World& world, const std::string& device_kind,
                           const std::string& backend) {
  const bool gpu = device_kind == "GPU";
  return fmt::format("{} {}{} over {} node{} ({})", world.size, device_kind,
                     gpu ? (world.size == 1 ? "" : "s") : (world.size == 1 ? " rank" : " ranks"),
                     world.nodes, world.nodes == 1 ? "" : "s", backend);
}

}  // namespace gpulab::distributed
