// Oracle: run snyk-docker-plugin (npm, pinned in package.json) on one image and print its packages.
//
// Usage: node tests/scan/oracles/sdp_scan.js <path>
//   <path> is what the plugin's scan({path}) accepts: docker-archive:FILE, oci-archive:FILE, or an
//   image reference it pulls over HTTPS (credentials from SDP_USERNAME / SDP_PASSWORD; a private CA via
//   NODE_EXTRA_CA_CERTS).
// Prints one JSON document on stdout:
//   {"results": [{"type": "deb", "targetFile": null, "pkgs": [{"id", "name", "version", "purl"}]}]}
// where results[0] is the OS result and pkgs leaves out the graph's root (the image itself).
"use strict";

const { scan } = require("snyk-docker-plugin");

async function main() {
  const path = process.argv[2];
  if (!path) {
    throw new Error("usage: node sdp_scan.js <docker-archive:FILE|oci-archive:FILE|IMAGE>");
  }
  const options = { path };
  if (process.env.SDP_USERNAME) {
    options.username = process.env.SDP_USERNAME;
    options.password = process.env.SDP_PASSWORD || "";
  }
  const response = await scan(options);
  const results = response.scanResults.map((result) => {
    const fact = result.facts.find((f) => f.type === "depGraph");
    // The fact holds a DepGraph object; toJSON() gives the wire form the Snyk backend receives.
    const graph = fact ? fact.data.toJSON() : { pkgs: [] };
    const rootId = graph.graph ? graph.graph.nodes.find((n) => n.nodeId === graph.graph.rootNodeId).pkgId : null;
    return {
      type: result.identity.type,
      targetFile: result.identity.targetFile || null,
      pkgs: graph.pkgs
        .filter((p) => p.id !== rootId)
        .map((p) => ({ id: p.id, name: p.info.name, version: p.info.version, purl: p.info.purl || null })),
    };
  });
  process.stdout.write(JSON.stringify({ results }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
