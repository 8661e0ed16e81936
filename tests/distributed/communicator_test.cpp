// The rendezvous: a rank of another job that reaches a job's store (two jobs
// on one port) is refused, naming both jobs, before it joins.
#include <gtest/gtest.h>

#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/local_launcher.h"

namespace gpulab::distributed {
namespace {

// Regression: the rendezvous had no job identity, so a rank of a second
// mpirun job on the same port joined the first job's store and both broke.
TEST(CommunicatorTest, ARankOfAnotherJobIsRefusedAtTheRendezvous) {
  World a;
  a.size = 2;
  a.launcher = "mpi";
  a.job_id = "1204879361";
  a.master_port = free_tcp_port();
  World b = a;
  b.rank = 1;
  b.job_id = "1204944897";
  const auto options = CommunicatorOptions().timeout_seconds(4);
  // Job a's rank 0 hosts the store and waits for its own rank 1 (in vain).
  std::thread job_a([&] {
    try {
      connect(a, c10::Device(c10::kCPU), options);
    } catch (const Error&) {
    }
  });
  try {
    connect(b, c10::Device(c10::kCPU), options);
    ADD_FAILURE() << "a rank of another job joined";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << message;
    EXPECT_NE(message.find("another job (mpi job 1204879361 of 2 ranks)"), std::string::npos)
        << message;
    EXPECT_NE(message.find("mpi job 1204944897"), std::string::npos) << message;
    EXPECT_NE(message.find("MASTER_PORT"), std::string::npos) << message;
  }
  job_a.join();
}

}  // namespace
}  // namespace gpulab::distributed
