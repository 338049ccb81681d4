export namespace app {
	
	export interface Account {
	    serverUrl: string;
	    userId: string;
	    email: string;
	    fullName: string;
	    platformAdmin: boolean;
	}
	export interface Invoice {
	    id: string;
	    storeId: string;
	    number: string;
	    status: string;
	    periodStart: string;
	    periodEnd: string;
	    issuedAt: string;
	    cod: number;
	    carrierFees: number;
	    platformFees: number;
	    vat: number;
	    net: number;
	    paid: number;
	    lines: number;
	}
	export interface InvoiceCheck {
	    valid: boolean;
	    reason: string;
	    number: string;
	    net: number;
	    keyId: string;
	}
	export interface Status {
	    online: boolean;
	    lastContactAt: string;
	    pending: number;
	    conflicts: number;
	    lastSyncAt?: string;
	    detail: string;
	}
	export interface Store {
	    id: string;
	    sellerId: string;
	    name: string;
	    primaryColor: string;
	    accentColor: string;
	    logoUrl: string;
	}
	export interface StoreList {
	    stores: Store[];
	    offline: boolean;
	    updatedAt: string;
	}

}

