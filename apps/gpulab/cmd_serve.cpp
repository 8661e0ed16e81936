// gpulab serve: the REST API over lab executions and the web page
// (docs/rest-api.md). Flags -> ServeOptions -> LabServer; runs until Ctrl-C.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/environment.h"
#include "gpulab/lab/execution_store.h"
#include "gpulab/serve/lab_server.h"

namespace gpulab::app {
namespace {

std::atomic<bool> g_serve_stop{false};

extern "C" void serve_on_signal(int) {
  g_serve_stop = true;
}

struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string token_file;
  std::string web_root;
  int threads = 64;
};

int run_serve(const ServeFlags& f) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto options = serve::ServeOptions(lab::lab_home_from_environment(), self)
                     .host(f.host)
                     .port(f.port)
                     .token_file(f.token_file)
                     .web_root(f.web_root)
                     .threads(f.threads);
#ifdef GPULAB_WITH_CURL
  options.s3(remote_access_from_environment().s3);
#endif
  serve::LabServer server(options);
  std::signal(SIGINT, serve_on_signal);
  std::signal(SIGTERM, serve_on_signal);
  server.start();
  std::fprintf(stderr, "gpulab: serving %s on %s (lab home %s)\n",
               server.web_root().empty() ? "the REST API" : "the REST API and the web page",
               server.url().c_str(), options.home().c_str());
  std::fprintf(stderr, "gpulab: bearer token for %s in %s\n",
               f.token_file.empty() ? "write routes" : "every route", server.token_path().c_str());
  if (f.host != "127.0.0.1" && f.host != "localhost" && f.host != "::1") {
    std::fprintf(stderr,
                 "gpulab: warning: plain HTTP (no TLS) on %s: the token travels in clear; prefer "
                 "127.0.0.1 with an SSH tunnel or a TLS reverse proxy (docs/rest-api.md)\n",
                 f.host.c_str());
  }
  while (!g_serve_stop) ::usleep(100 * 1000);
  std::fprintf(stderr, "gpulab: stopping the server (executions keep running)\n");
  server.stop();
  return 0;
}

}  // namespace

Action add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "REST API and web page over lab executions (docs/rest-api.md); plain HTTP");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("--host", f->host,
                  "Address to bind (no TLS: keep 127.0.0.1 and use an SSH tunnel or a reverse "
                  "proxy for remote users)")
      ->capture_default_str();
  cmd->add_option("--port", f->port, "TCP port (0 = any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--token-file", f->token_file,
                  "File whose first line is the bearer token; every route but /api/health and "
                  "the page then needs it. Default: a random token for write routes, written to "
                  "GPULAB_HOME/serve-token (0600)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--web-root", f->web_root,
                  "Folder of the web page (default: BINDIR/../share/gpulab/web, else the source "
                  "tree's web/)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--threads", f->threads,
                  "HTTP worker threads; each followed log holds one (count)")
      ->check(CLI::Range(4, 1024))
      ->capture_default_str();
  return [f] { return run_serve(*f); };
}

}  // namespace gpulab::app
