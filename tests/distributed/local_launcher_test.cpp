// The launcher's report of which rank is to blame for a failed job.
#include <gtest/gtest.h>

#include "gpulab/distributed/local_launcher.h"

namespace gpulab::distributed {
namespace {

TEST(LocalLauncherTest, BlamesTheRankAnErrorNamesAsLost) {
  EXPECT_EQ(rank_blamed_in("gpulab: error: rank 0: all-reduce failed: lost rank 1 (it stopped "
                           "answering: exited, killed or hung); Timed out",
                           0),
            1);
  EXPECT_EQ(rank_blamed_in("rank 2: barrier failed: rank 3 failed: cannot decode 'a.jpg'", 2), 3);
  EXPECT_EQ(rank_blamed_in("rank 1: all-reduce failed: lost rank 0 (its rendezvous store "
                           "stopped answering: rank 0 hung or was stopped)",
                           1),
            0);
}

// Regression: a rank's usage error showed as "Run with --help for more
// information." in the launcher's headline, not what was wrong.
TEST(LocalLauncherTest, HeadlineShowsTheUsageErrorNotTheHelpHint) {
  EXPECT_EQ(most_telling_line({"The following argument was not expected: --bogus",
                               "Run with --help for more information."}),
            "The following argument was not expected: --bogus");
  EXPECT_EQ(most_telling_line({"warning: slow disk", "--data is required",
                               "Run with --help for more information."}),
            "--data is required");
  EXPECT_EQ(
      most_telling_line({"Training on CPU", "gpulab: error: data path 'x' does not exist", "bye"}),
      "gpulab: error: data path 'x' does not exist");
  EXPECT_EQ(most_telling_line({"a", "b"}), "b");
  EXPECT_EQ(most_telling_line({}), "");
}

TEST(LocalLauncherTest, BlamesNoOtherRankForARanksOwnError) {
  EXPECT_EQ(rank_blamed_in("gpulab: error: data path 'x' does not exist", 1), -1);
  EXPECT_EQ(rank_blamed_in("rank 1: rank(s) 1 of 2 did not join", 1), -1);
  EXPECT_EQ(rank_blamed_in("", 0), -1);
}

TEST(LocalLauncherTest, HeadlineNamesTheLostRankBeforeTheOneThatReportedIt) {
  LaunchResult result;
  result.exit_code = 1;
  result.failed_rank = 0;
  result.failure = "exit code 1: rank 0: all-reduce failed: lost rank 1";
  EXPECT_EQ(result.headline(2),
            "rank 0 of 2 failed: exit code 1: rank 0: all-reduce failed: "
            "lost rank 1");
  result.lost_rank = 1;
  EXPECT_EQ(
      result.headline(2).rfind("rank 1 of 2 failed or stopped answering; rank 0 reported:", 0), 0u)
      << result.headline(2);
  result.restarts = 1;
  EXPECT_NE(result.headline(2).find("(after 1 restart)"), std::string::npos);
}

}  // namespace
}  // namespace gpulab::distributed
