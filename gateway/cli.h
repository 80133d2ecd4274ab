// The `passerelle` command line: one binary, one sub-command per operator task (DESIGN.md
// "Public contracts"). RunCli is the whole program minus process plumbing, so tests drive it
// in-process with their own streams. Exit codes: 0 success, 1 the input is invalid (validate,
// verify) or refused, 2 usage or environment error (missing file, schemas not loadable).
#ifndef PSL_GATEWAY_CLI_H_
#define PSL_GATEWAY_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace psl::gateway {

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_CLI_H_
