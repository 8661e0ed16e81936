// Communicator over c10d: a TCPStore rendezvous, a Gloo or NCCL process group,
// liveness beats in the store so a failed collective can name the lost rank.
#include "gpulab/dist/communicator.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef GPULAB_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef GPULAB_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gpulab/core/compat.h"
#include "gpulab/core/error.h"

namespace gpulab::dist {
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
// connection, so a rank that hangs or dies stops beating.
class Heartbeat {
 public:
  Heartbeat(const World& world, Millis period, Millis timeout) : period_(period) {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world.master_port);
    options.isServer = false;
    options.timeout = timeout;
    store_ = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    key_ = "beat/" + std::to_string(world.rank);
    thread_ = std::thread([this] { run(); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      try {
        store_->add(key_, 1);
      } catch (const std::exception&) {
        return;  // the store is gone: rank 0 ended; nothing left to tell
      }
      wake_.wait_for(lock, period_, [this] { return stopping_; });
    }
  }

  Millis period_;
  c10::intrusive_ptr<c10d::TCPStore> store_;  // used by thread_ only
  std::string key_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
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
    rendezvous(timeout);
    backend_name_ =
        options.backend() == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : options.backend();
    create_process_group(timeout);
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
    std::vector<std::string> values(world_.size);
    guarded("start-up check", [&] {
      store_->set(prefix + std::to_string(world_.rank), bytes(value));
      for (int r = 0; r < world_.size; ++r)
        values[r] = text(store_->get(prefix + std::to_string(r)));
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
      store_->set("failed/" + std::to_string(world_.rank), bytes(message));
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
                                    diagnose(), first_line(cause)));
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

  void rendezvous(Millis timeout) {
    store_->add("joined/" + std::to_string(world_.rank), 1);
    std::vector<std::string> keys;
    for (int r = 0; r < world_.size; ++r) keys.push_back("joined/" + std::to_string(r));
    try {
      store_->wait(keys, timeout);
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

  void create_process_group(Millis timeout) {
    if (backend_name_ == "gloo") {
#ifdef GPULAB_WITH_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // One node: loopback, whatever the host name resolves to.
      options->devices.push_back(world_.nodes == 1
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
                  "CUDA LibTorch with NCCL, or use --dist-backend gloo");
#endif
    }
    GPULAB_FAIL(ErrorKind::kInvalidArgument,
                "unknown distributed backend '{}'; valid: auto, gloo, "
                "nccl",
                backend_name_);
  }

  // Which ranks are lost: one that announced its failure, else those whose
  // beat stopped, else rank 0 when its store is gone.
  std::string diagnose() const {
    try {
      c10d::TCPStoreOptions options;
      options.port = static_cast<uint16_t>(world_.master_port);
      options.timeout = Millis(5000);
      auto store = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
      for (int r = 0; r < world_.size; ++r) {
        const std::string key = "failed/" + std::to_string(r);
        if (r != world_.rank && store->check({key})) {
          return fmt::format("rank {} failed: {}", r, text(store->get(key)));
        }
      }
      auto beats = [&] {
        std::vector<int64_t> b(world_.size);
        for (int r = 0; r < world_.size; ++r) b[r] = store->add("beat/" + std::to_string(r), 0);
        return b;
      };
      const auto before = beats();
      std::this_thread::sleep_for(to_millis(3 * options_.heartbeat_seconds()));
      const auto after = beats();
      std::vector<int> stale;
      for (int r = 0; r < world_.size; ++r) {
        if (r != world_.rank && after[r] == before[r]) stale.push_back(r);
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

}  // namespace gpulab::dist
