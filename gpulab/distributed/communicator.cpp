// Communicator over c10d: a TCPStore rendezvous, a Gloo or NCCL process group,
// liveness beats in the store so a failed collective can name the lost rank.
#include "gpulab/distributed/communicator.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef GPULAB_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef GPULAB_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gpulab/core/compat.h"
#include "gpulab/core/error.h"

namespace gpulab::distributed {
namespace {

using Millis = std::chrono::milliseconds;

Millis to_millis(double seconds) {
  return Millis(static_cast<int64_t>(seconds * 1000));
}

std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string text(const std::vector<uint8_t>& b) {
  return {b.begin(), b.end()};
}

// Runs `work` on a thread of its own and waits at most `deadline` for it. A
// c10d store client has no receive timeout (LibTorch 1.13): a rank that hangs
// with the store open (rank 0 stopped, say) would block the caller forever.
// On a timeout the thread is left detached, owning what `work` captured, and
// this returns false; it ends with the process.
template <typename F>
bool finishes_within(Millis deadline, F work) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([done, work = std::move(work)]() mutable {
    try {
      work();
    } catch (...) {
    }
    done->set_value();
  }).detach();
  return finished.wait_for(deadline) == std::future_status::ready;
}

// How long a failing collective spends finding out which rank was lost: the
// beats are read twice, 3 periods apart, plus a second of slack.
Millis diagnosis_budget(const CommunicatorOptions& options) {
  return to_millis(3 * options.heartbeat_seconds() + 1);
}

// A collective waits the configured timeout less the diagnosis and 2 s to
// shut down (a heartbeat stuck on a hung store, the process group), so a rank
// exits within --dist-timeout of losing a peer (waiting at least half of it).
Millis collective_timeout(const CommunicatorOptions& options) {
  const Millis total = to_millis(options.timeout_seconds());
  return std::max(total / 2, total - diagnosis_budget(options) - Millis(2000));
}

class SingleProcess final : public Communicator {
 public:
  SingleProcess() : Communicator(World{}) {}
  std::string backend() const override { return "none"; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  std::unique_ptr<PendingReduce> all_reduce_sum_async(at::Tensor) override {
    struct Done final : PendingReduce {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
  void broadcast(std::vector<at::Tensor>&, int) override {}
  void barrier() override {}
  void check_same_on_all_ranks(const std::string&, const std::string&) override {}
  void announce_failure(const std::string&) noexcept override {}
};

// Each rank bumps "beat/<rank>" every period from its own thread and store
// connection, so a rank that hangs or dies stops beating. The thread owns its
// state: when rank 0 hangs, an add() may never return, and the destructor
// then leaves the thread behind instead of joining it.
class Heartbeat {
 public:
  Heartbeat(const World& world, Millis period, Millis timeout)
      : shared_(std::make_shared<Shared>()) {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world.master_port);
    options.isServer = false;
    options.timeout = timeout;
    shared_->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    shared_->key = "beat/" + std::to_string(world.rank);
    shared_->period = period;
    exited_ = shared_->exited.get_future();
    thread_ = std::thread([shared = shared_] { run(*shared); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(shared_->mutex);
      shared_->stopping = true;
    }
    shared_->wake.notify_all();
    // A live store answers an add() in microseconds; one that has not
    // answered in half a second is the hung rank's.
    if (exited_.wait_for(Millis(500)) == std::future_status::ready) {
      thread_.join();
    } else {
      thread_.detach();  // blocked on a store that no longer answers
    }
  }

 private:
  struct Shared {
    c10::intrusive_ptr<c10d::TCPStore> store;  // used by the thread only
    std::string key;
    Millis period{1000};
    std::mutex mutex;  // guards stopping
    std::condition_variable wake;
    bool stopping = false;
    std::promise<void> exited;
  };

  static void run(Shared& s) {
    {
      std::unique_lock<std::mutex> lock(s.mutex);
      while (!s.stopping) {
        lock.unlock();
        try {
          s.store->add(s.key, 1);
        } catch (const std::exception&) {
          break;  // the store is gone: rank 0 ended; nothing left to tell
        }
        lock.lock();
        s.wake.wait_for(lock, s.period, [&s] { return s.stopping; });
      }
    }
    s.exited.set_value();
  }

  std::shared_ptr<Shared> shared_;
  std::future<void> exited_;
  std::thread thread_;
};

class C10dCommunicator;

class C10dPending final : public PendingReduce {
 public:
  C10dPending(const C10dCommunicator* owner, c10::intrusive_ptr<c10d::Work> work)
      : owner_(owner), work_(std::move(work)) {}
  void wait() override;

 private:
  const C10dCommunicator* owner_;
  c10::intrusive_ptr<c10d::Work> work_;
};

class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(const World& world, c10::Device device, const CommunicatorOptions& options)
      : Communicator(world), options_(options) {
    const Millis timeout = to_millis(options.timeout_seconds());
    store_ = open_store(timeout);
    rendezvous();
    backend_name_ =
        options.backend() == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : options.backend();
    create_process_group(collective_timeout(options), device);
    heartbeat_ =
        std::make_unique<Heartbeat>(world_, to_millis(options.heartbeat_seconds()), timeout);
  }

  ~C10dCommunicator() override {
    heartbeat_.reset();
    group_.reset();
  }

  std::string backend() const override { return backend_name_; }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    guarded("all-reduce", [&] {
      auto work = group_->allreduce(tensors);
      work->wait();
    });
  }

  std::unique_ptr<PendingReduce> all_reduce_sum_async(at::Tensor tensor) override {
    c10::intrusive_ptr<c10d::Work> work;
    guarded("all-reduce", [&] {
      std::vector<at::Tensor> tensors{std::move(tensor)};
      work = group_->allreduce(tensors);
    });
    return std::make_unique<C10dPending>(this, std::move(work));
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    guarded("broadcast", [&] {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      for (auto& t : tensors) {
        std::vector<at::Tensor> one{t};
        group_->broadcast(one, options)->wait();
      }
    });
  }

  void barrier() override {
    guarded("barrier", [&] { group_->barrier()->wait(); });
  }

  void check_same_on_all_ranks(const std::string& what, const std::string& value) override {
    const std::string prefix = "same/" + what + "/";
    std::vector<std::string> keys, values(world_.size);
    for (int r = 0; r < world_.size; ++r) keys.push_back(prefix + std::to_string(r));
    guarded("start-up check", [&] {
      store_->set(keys[world_.rank], bytes(value));
      wait_for_peers(keys, "start-up check of the " + what);
      for (int r = 0; r < world_.size; ++r) values[r] = text(store_->get(keys[r]));
    });
    for (int r = 1; r < world_.size; ++r) {
      GPULAB_CHECK(values[r] == values[0], ErrorKind::kInvalidArgument,
                   "ranks disagree on the {}: rank 0 has '{}' but rank {} has '{}'; start every "
                   "rank with the same command, data and world size",
                   what, values[0], r, values[r]);
    }
  }

  void announce_failure(const std::string& message) noexcept override {
    try {
      // Bounded: the store lives in rank 0, which may be the rank that hung.
      finishes_within(Millis(2000), [store = store_, key = "failed/" + std::to_string(world_.rank),
                                     value = bytes(message)] { store->set(key, value); });
      // Closing the group's connections makes the peers' collectives fail
      // now rather than at the timeout.
      heartbeat_.reset();
      group_.reset();
      // Rank 0 hosts the store: keep it up while the peers read the reason.
      if (world_.is_main()) {
        std::this_thread::sleep_for(to_millis(3 * options_.heartbeat_seconds() + 3));
      }
    } catch (...) {
    }
  }

  // Turns a c10d failure into an error that names the lost rank(s).
  [[noreturn]] void fail(const std::string& operation, const std::string& cause) const {
    throw PeerLostError(fmt::format("rank {}: {} failed: {}; {}", world_.rank, operation,
                                    bounded_diagnosis(), first_line(cause)));
  }

 private:
  template <typename F>
  void guarded(const std::string& operation, F&& body) {
    try {
      body();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(operation, e.what());
    }
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  c10::intrusive_ptr<c10d::TCPStore> open_store(Millis timeout) const {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world_.master_port);
    options.isServer = world_.is_main();
    options.numWorkers = world_.size;
    options.waitWorkers = false;  // rendezvous() waits, naming the missing ranks
    options.timeout = timeout;
    try {
      return c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
    } catch (const std::exception& e) {
      GPULAB_FAIL(ErrorKind::kRuntime,
                  "rank {} ({} launcher): cannot {} the rendezvous store at {}:{} within {:g} s: "
                  "{}; {}",
                  world_.rank, world_.launcher, world_.is_main() ? "open" : "reach",
                  world_.master_addr, world_.master_port, options_.timeout_seconds(),
                  first_line(e.what()),
                  world_.is_main() ? "is MASTER_PORT already in use? choose another"
                                   : "is rank 0 running, and are MASTER_ADDR/MASTER_PORT right?");
    }
  }

  // Rank 0 posts the job's identity before anyone joins; every other rank
  // reads it first and leaves, touching nothing, when the store belongs to
  // another job (two jobs on one node and port would corrupt each other).
  void check_job_identity() {
    const std::string identity = world_.job_identity();
    if (world_.is_main()) {
      store_->set("job", bytes(identity));
      return;
    }
    try {
      wait_for_peers({"job"}, "rendezvous");
    } catch (const PeerLostError&) {
      throw;
    } catch (const std::exception&) {
      GPULAB_FAIL(ErrorKind::kRuntime,
                  "rank {}: the rendezvous store at {}:{} did not say whose it is within {:g} s; "
                  "is rank 0 running gpulab of this version?",
                  world_.rank, world_.master_addr, world_.master_port, options_.timeout_seconds());
    }
    const std::string found = text(store_->get("job"));
    GPULAB_CHECK(found == identity, ErrorKind::kInvalidArgument,
                 "rank {} ({}) reached the rendezvous store at {}:{} of another job ({}); "
                 "concurrent jobs need different ports (MASTER_PORT), and every rank of a job "
                 "the same launcher and world size",
                 world_.rank, identity, world_.master_addr, world_.master_port, found);
  }

  void rendezvous() {
    check_job_identity();
    store_->add("joined/" + std::to_string(world_.rank), 1);
    std::vector<std::string> keys;
    for (int r = 0; r < world_.size; ++r) keys.push_back("joined/" + std::to_string(r));
    try {
      wait_for_peers(keys, "rendezvous");
    } catch (const PeerLostError&) {
      throw;
    } catch (const std::exception&) {
      std::vector<int> missing;
      for (int r = 0; r < world_.size; ++r) {
        if (!store_->check({keys[r]})) missing.push_back(r);
      }
      GPULAB_FAIL(ErrorKind::kRuntime,
                  "rank {}: rank(s) {} of {} did not join at {}:{} within {:g} s; were all ranks "
                  "started with the same world size (WORLD_SIZE / -n / -np)?",
                  world_.rank, fmt::join(missing, ", "), world_.size, world_.master_addr,
                  world_.master_port, options_.timeout_seconds());
    }
  }

  void create_process_group(Millis timeout, c10::Device device) {
    if (backend_name_ == "gloo") {
#ifdef GPULAB_WITH_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // A loopback master means every rank is here: bind loopback, whatever
      // the host name resolves to. Otherwise the interface the host name
      // resolves to (Gloo falls back to loopback when it is unusable); the
      // node count cannot decide this, as a torchrun-style launch without
      // LOCAL_WORLD_SIZE looks like one node.
      options->devices.push_back(is_loopback_address(world_.master_addr)
                                     ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
      guarded("Gloo process group", [&] {
        group_ =
            c10::make_intrusive<c10d::ProcessGroupGloo>(store_, world_.rank, world_.size, options);
      });
      return;
#else
      GPULAB_FAIL(ErrorKind::kUnavailable,
                  "this gpulab was built without Gloo (c10d): CPU ranks cannot talk; rebuild "
                  "with libgloo-dev installed");
#endif
    }
    if (backend_name_ == "nccl") {
#ifdef GPULAB_WITH_NCCL
      // The group's barrier (and its first communicator) uses the current
      // device: make it this rank's, not GPU 0, whatever the layout.
      if (device.is_cuda() && device.has_index()) c10::cuda::set_device(device.index());
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      guarded("NCCL process group", [&] {
        group_ =
            c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, world_.rank, world_.size, options);
      });
      return;
#else
      GPULAB_FAIL(ErrorKind::kUnavailable,
                  "this gpulab was built without NCCL: GPU ranks cannot talk; build against a "
                  "CUDA LibTorch with NCCL, or use `dist_backend` gloo");
#endif
    }
    GPULAB_FAIL(ErrorKind::kInvalidArgument,
                "unknown distributed backend '{}'; valid: auto, gloo, "
                "nccl",
                backend_name_);
  }

  // Waits until every key is set, checking between short waits whether a rank
  // announced a failure, so one rank's start-up error fails the others at
  // once instead of at the timeout. Throws PeerLostError naming that rank, or
  // the store's timeout error.
  // Gives up after the configured timeout.
  void wait_for_peers(const std::vector<std::string>& keys, const std::string& operation) const {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + to_millis(options_.timeout_seconds());
    // Polls with check(), never a timed-out wait(): the store still answers a
    // wait that the client gave up on, and that late answer is then read as
    // the reply to the next request ("Stop_waiting response is expected"),
    // which under load failed healthy jobs.
    for (;;) {
      if (store_->check(keys)) return;
      for (int r = 0; r < world_.size; ++r) {
        const std::string key = "failed/" + std::to_string(r);
        if (r != world_.rank && store_->check({key})) {
          throw PeerLostError(fmt::format("rank {}: {} failed: rank {} failed: {}", world_.rank,
                                          operation, r, text(store_->get(key))));
        }
      }
      // A plain exception, like the store's own timeout: callers diagnose it.
      if (Clock::now() >= deadline) {
        throw std::runtime_error(
            fmt::format("{} timed out after {:g} s", operation, options_.timeout_seconds()));
      }
      std::this_thread::sleep_for(Millis(50));
    }
  }

  // diagnose() within its budget: rank 0 hosts the store, and when rank 0
  // hangs (rather than dies) the store accepts requests and never answers.
  std::string bounded_diagnosis() const {
    auto answer = std::make_shared<std::string>();
    const bool answered = finishes_within(
        diagnosis_budget(options_), [answer, world = world_, beat = options_.heartbeat_seconds(),
                                     connect = diagnosis_connect_timeout(options_)] {
          *answer = diagnose(world, beat, connect);
        });
    if (answered) return *answer;
    return "lost rank 0 (its rendezvous store stopped answering: rank 0 hung or was stopped)";
  }

  // diagnose()'s store connection: a dead store (connection refused) must fail
  // well inside the budget, or a crashed rank 0 reads as a hung one.
  static Millis diagnosis_connect_timeout(const CommunicatorOptions& options) {
    return diagnosis_budget(options) / 4;
  }

  // Which ranks are lost: one that announced its failure, else those whose
  // beat stopped, else rank 0 when its store is gone.
  static std::string diagnose(const World& world, double heartbeat_seconds,
                              Millis connect_timeout) {
    try {
      c10d::TCPStoreOptions store_options;
      store_options.port = static_cast<uint16_t>(world.master_port);
      store_options.timeout = connect_timeout;
      auto store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, store_options);
      for (int r = 0; r < world.size; ++r) {
        const std::string key = "failed/" + std::to_string(r);
        if (r != world.rank && store->check({key})) {
          return fmt::format("rank {} failed: {}", r, text(store->get(key)));
        }
      }
      auto beats = [&] {
        std::vector<int64_t> b(world.size);
        for (int r = 0; r < world.size; ++r) b[r] = store->add("beat/" + std::to_string(r), 0);
        return b;
      };
      const auto before = beats();
      std::this_thread::sleep_for(to_millis(3 * heartbeat_seconds));
      const auto after = beats();
      std::vector<int> stale;
      for (int r = 0; r < world.size; ++r) {
        if (r != world.rank && after[r] == before[r]) stale.push_back(r);
      }
      if (!stale.empty()) {
        return fmt::format("lost rank {} (it stopped answering: exited, killed or hung)",
                           fmt::join(stale, ", "));
      }
      return "every rank still answers (a network or backend error)";
    } catch (const std::exception&) {
      return "lost rank 0 (its rendezvous store no longer answers: it exited or was killed)";
    }
  }

  CommunicatorOptions options_;
  std::string backend_name_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<compat::C10dBackend> group_;
  std::unique_ptr<Heartbeat> heartbeat_;
};

void C10dPending::wait() {
  try {
    work_->wait();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    owner_->fail("all-reduce", e.what());
  }
}

}  // namespace

std::unique_ptr<Communicator> single_process_communicator() {
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> connect(const World& world, c10::Device device,
                                      const CommunicatorOptions& options) {
  if (!world.is_distributed() && !options.group_for_one_rank()) {
    return single_process_communicator();
  }
  GPULAB_CHECK(options.timeout_seconds() > 0, ErrorKind::kInvalidArgument,
               "the distributed timeout must be positive, got {} s", options.timeout_seconds());
  return std::make_unique<C10dCommunicator>(world, device, options);
}

}  // namespace gpulab::distributed
