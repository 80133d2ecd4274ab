#include <iostream>
#include <string>
#include <vector>

#include "gateway/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return psl::gateway::RunCli(args, std::cout, std::cerr);
}
