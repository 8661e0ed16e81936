// Collectives between the ranks of a World over a c10d process group: Gloo
// between CPU ranks, NCCL between GPUs, and a single-process stub whose
// collectives do nothing. Failures name the lost rank instead of hanging.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gpulab/core/error.h"
#include "gpulab/core/options.h"
#include "gpulab/distributed/world.h"

namespace gpulab::distributed {

struct CommunicatorOptions {
  // "auto" (NCCL for CUDA tensors, Gloo for CPU), "gloo" or "nccl".
  GPULAB_ARG(std::string, backend) = "auto";
  // A collective or rendezvous that waits longer than this fails, naming the
  // rank that did not answer (seconds).
  GPULAB_ARG(double, timeout_seconds) = 60;
  // Seconds between the liveness beats each rank posts to the store.
  GPULAB_ARG(double, heartbeat_seconds) = 1;
  // Build the process group even for a world of one rank (to exercise or time
  // the backend itself); otherwise one rank gets the no-op communicator.
  GPULAB_ARG(bool, group_for_one_rank) = false;
};

// A collective failed because another rank was lost (failed, killed, hung);
// the message names it. Thrown instead of hanging forever.
class PeerLostError : public Error {
 public:
  explicit PeerLostError(const std::string& message) : Error(ErrorKind::kRuntime, message) {}
};

// An all-reduce in flight. wait() rethrows its failure as a gpulab::Error.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  const World& world() const { return world_; }
  // "none" (one process), "gloo" or "nccl".
  virtual std::string backend() const = 0;

  // Sums each tensor over the ranks, in place; blocks until done.
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // Starts summing `tensor` in place; the reduce runs while the caller goes on.
  virtual std::unique_ptr<PendingReduce> all_reduce_sum_async(at::Tensor tensor) = 0;
  // Copies rank `root`'s tensors into everyone's, in place.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void barrier() = 0;

  // Fails on every rank when `value` differs between ranks, naming the ranks
  // and both values: catches mismatched configurations at start-up.
  virtual void check_same_on_all_ranks(const std::string& what, const std::string& value) = 0;
  // Tells the other ranks this one is failing with `message`, so their errors
  // name it, and closes the group so they fail now rather than at the timeout
  // (best effort; never throws). The communicator is unusable afterwards.
  // Rank 0 keeps its store up a few seconds for the peers to read the reason.
  virtual void announce_failure(const std::string& message) noexcept = 0;

 protected:
  explicit Communicator(World world) : world_(std::move(world)) {}
  World world_;
};

// One process: collectives are no-ops.
std::unique_ptr<Communicator> single_process_communicator();

// Joins the world: rank 0 hosts the rendezvous store at master_addr:port, every
// rank connects and builds the process group. `device` picks the backend under
// "auto". A world of size 1 gives the single-process communicator unless
// options.group_for_one_rank(). Throws
// Error(kUnavailable) when the backend is not built in, Error(kRuntime) when
// the rendezvous times out (naming the ranks that did not join).
std::unique_ptr<Communicator> connect(const World& world, c10::Device device,
                                      const CommunicatorOptions& options = {});

}  // namespace gpulab::distributed
