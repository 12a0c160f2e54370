// ulmfit command line: parses flags, loads the config, runs stages, maps errors to exit codes.
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "ulmfit: not wired up yet\n");
  return 1;
}
