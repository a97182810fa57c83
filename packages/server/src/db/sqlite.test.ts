// test-database: own
import { runRepositoryContract } from './repositories.contract.js';

runRepositoryContract('sqlite');
