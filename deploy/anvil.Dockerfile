# An anvil node from npm (@foundry-rs/anvil, the version the tests run: package.json). Its
# state goes to the /data volume (deploy/compose.yaml runs it with --state), so that the chain
# survives restarts.
FROM node:22-slim
RUN npm install --global @foundry-rs/anvil@1.7.1 \
    && mkdir -p /data \
    && chown node:node /data
USER node
WORKDIR /data
EXPOSE 8545
ENTRYPOINT ["anvil"]
CMD ["--host", "0.0.0.0", "--port", "8545", "--state", "/data/anvil.json", "--state-interval", "1"]
